package keeper_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/cloudluks/cloudluks/keeper"
)

// memVault is the smallest Secrets: the real one is keeper/vault's age-encrypted file.
type memVault map[string][]byte

func (v memVault) Passphrase(volumeID string) ([]byte, error) {
	p, ok := v[volumeID]
	if !ok {
		return nil, keeper.ErrNoPassphrase
	}
	return append([]byte(nil), p...), nil // a copy: the keeper zeroes it
}

// A keeper for one instance: Run unlocks it now and after every reboot.
func ExampleNew() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	k, err := keeper.New(keeper.Options{
		EC2:     ec2.NewFromConfig(cfg),
		Secrets: memVault{"vol-0123456789abcdef0": []byte("from the vault")},
		Audit:   os.Stderr,
	}, []keeper.Target{{
		Name: "web-1/data", InstanceID: "i-0123456789abcdef0", VolumeID: "vol-0123456789abcdef0",
		Mapping: "data", MountPoint: "/data", LUKSUUID: "6f1a0c8e-5b7d-4c3e-9a1f-2b4d6e8f0a1c",
		SSH: keeper.SSHConfig{User: "keeper", KeyFile: "/etc/keeper/id_ed25519",
			KnownHosts: []string{"/etc/keeper/known_hosts"}},
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_ = k.Run(ctx)
}

func ExampleWriteStatusTable() {
	at := time.Date(2026, 12, 4, 18, 2, 3, 0, time.UTC)
	_ = keeper.WriteStatusTable(os.Stdout, []keeper.TargetStatus{
		{Name: "db-1/data", InstanceID: "i-0aaaaaaaaaaaaaaa1", VolumeID: "vol-0bbbbbbbbbbbbbbb1",
			BootID: "3f1c2b9e-6d4a-4f0e-9a51-2d7c8e1f0a42", State: keeper.StateUnlocked, LastUnlock: at},
		{Name: "web-1/data", InstanceID: "i-0aaaaaaaaaaaaaaa2", VolumeID: "vol-0bbbbbbbbbbbbbbb2",
			State: keeper.StateRefused, Reason: "LUKS UUID mismatch"},
	})
	// Output:
	// NAME        INSTANCE             VOLUME                 BOOT ID   STATE                        LAST UNLOCK
	// db-1/data   i-0aaaaaaaaaaaaaaa1  vol-0bbbbbbbbbbbbbbb1  3f1c2b9e  unlocked                     2026-12-04T18:02:03Z
	// web-1/data  i-0aaaaaaaaaaaaaaa2  vol-0bbbbbbbbbbbbbbb2  -         refused: LUKS UUID mismatch  -
}
