package config_test

import (
	"fmt"

	"github.com/cloudluks/cloudluks/keeper/config"
)

func ExampleParse() {
	c, err := config.Parse("keeper.toml", []byte(`
vault       = "/etc/keeper/vault.age"
known_hosts = "/etc/keeper/known_hosts"

[ssh]
user = "keeper"
key  = "/etc/keeper/id_ed25519"

[[target]]
instance = "i-0123456789abcdef0"
volume   = "vol-0123456789abcdef0"
mapping  = "data"
mount    = "/data"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range c.Targets {
		fmt.Println(t.Label(), t.SSH.User, t.SSH.Port, t.SSH.KnownHosts)
	}

	_, err = config.Parse("keeper.toml", []byte("vault = \"/v\"\nconcurency = 4\n"))
	fmt.Println(err)
	// Output:
	// i-0123456789abcdef0/vol-0123456789abcdef0 keeper 22 [/etc/keeper/known_hosts]
	// keeper.toml:2: unknown key concurency
}
