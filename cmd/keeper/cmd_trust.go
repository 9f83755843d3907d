package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/keeper"
	"github.com/cloudluks/cloudluks/keeper/config"
	"github.com/cloudluks/cloudluks/keeper/consolekeys"
)

func cmdTrust(a *app, args []string) error {
	fs := a.flags("trust")
	fingerprint := fs.String("fingerprint", "", "the host key's fingerprint as you got it out of band (SHA256:… as ssh-keygen -l prints it)")
	noConsole := fs.Bool("no-console", false, "do not look for cloud-init's host-key fingerprints in the EC2 console output")
	yes := fs.Bool("yes", false, "trust the key the host presents without asking (only when nothing else can vouch for it)")
	replace := fs.Bool("replace", false, "replace a different key already pinned for the host (after a rebuild)")
	knownHostsFlag := fs.String("known-hosts", "", "known_hosts file to write (default: the configuration's known_hosts)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up dialling after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("trust INSTANCE")
	}
	instance := pos[0]
	if *fingerprint != "" && !strings.HasPrefix(*fingerprint, "SHA256:") && !strings.HasPrefix(*fingerprint, "MD5:") {
		return usageErr("--fingerprint %q: want SHA256:… (ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key.pub)", *fingerprint)
	}
	c, err := config.Load(a.config)
	if err != nil {
		return err
	}
	khFile := *knownHostsFlag
	if khFile == "" {
		khFile = c.KnownHosts
	}
	if khFile == "" || !filepath.IsAbs(khFile) {
		return usageErr("no known_hosts to write: set known_hosts in %s or give --known-hosts /ABSOLUTE/PATH", a.config)
	}
	ctx, cancel := context.WithTimeout(a.ctx, 2**timeout)
	defer cancel()

	var api keeper.EC2API
	getAPI := func() (keeper.EC2API, error) {
		if api == nil {
			var err error
			api, err = a.ec2(ctx, c.Region)
			return api, err
		}
		return api, nil
	}
	needEC2 := !*noConsole && *fingerprint == ""
	t, err := findTarget(ctx, c, instance, getAPI)
	if err != nil {
		return err
	}
	cfg := sshConfig(t.SSH)
	if cfg.Addr == "" || needEC2 {
		if _, err := getAPI(); err != nil {
			return err
		}
	}
	addr := cfg.Addr
	if addr == "" {
		if addr, err = instanceAddr(ctx, api, instance, cfg); err != nil {
			return err
		}
	}
	key, err := keeper.HostKey(ctx, cfg, addr, *timeout)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", instance, addr, err)
	}
	fp := ssh.FingerprintSHA256(key)

	switch {
	case *fingerprint != "":
		if *fingerprint != fp && *fingerprint != "MD5:"+ssh.FingerprintLegacyMD5(key) {
			return fmt.Errorf("%s (%s) presents %s key %s, not %s: %w", instance, addr, keyType(key), fp, *fingerprint, errHostKeyRefused)
		}
		fmt.Fprintf(a.stderr, "%s: %s key %s matches the fingerprint given\n", program, keyType(key), fp)
	default:
		vouched := false
		if needEC2 {
			r, err := consoleReport(ctx, api, instance)
			switch {
			case errors.Is(err, consolekeys.ErrNoKeys):
				fmt.Fprintf(a.stderr, "%s: %s: the console output holds no host-key fingerprints (cloud-init prints them on the first boot only)\n", program, instance)
			case err != nil:
				return fmt.Errorf("%s: console output: %w", instance, err)
			default:
				ok, _ := r.Trusts(key)
				if !ok {
					return fmt.Errorf("%s (%s) presents %s key %s, which its console output does not show: %w", instance, addr, keyType(key), fp, errHostKeyRefused)
				}
				fmt.Fprintf(a.stderr, "%s: %s key %s matches the fingerprint cloud-init printed on the console of %s\n", program, keyType(key), fp, instance)
				vouched = true
			}
		}
		others, err := knownKeys(khFile, []string{instance, addr}, key)
		if err != nil {
			return err
		}
		if !vouched && len(others) > 0 && !*replace {
			// A key nobody vouched for, next to one already pinned: an impostor at the
			// address is as likely as a new key type. OpenSSH refuses to learn it too.
			return fmt.Errorf("%s (%s) presents %s key %s, not vouched for, but %s already pins %s for it: check it with --fingerprint (or the console output), or --replace if the host was rebuilt: %w",
				instance, addr, keyType(key), fp, khFile, describeKeys(others), errHostKeyRefused)
		}
		if !vouched && !*yes {
			// OpenSSH's own question, and OpenSSH's answer: only "yes" goes on.
			if len(others) > 0 {
				what := "keys of different type are"
				if slices.ContainsFunc(others, func(k knownhosts.KnownKey) bool { return keyType(k.Key) == keyType(key) }) {
					what = "another " + keyType(key) + " key is"
				}
				fmt.Fprintf(a.stderr, "The authenticity of host '%s (%s)' can't be established\nbut %s already known for this host (%s); --replace drops them.\n%s key fingerprint is %s.\nAre you sure you want to continue connecting (yes/no)? ", instance, addr, what, describeKeys(others), keyType(key), fp)
			} else {
				fmt.Fprintf(a.stderr, "The authenticity of host '%s (%s)' can't be established.\n%s key fingerprint is %s.\nAre you sure you want to continue connecting (yes/no)? ", instance, addr, keyType(key), fp)
			}
			line, err := cli.ReadLineContext(a.ctx, a.stdin, 64)
			defer clear(line)
			if err != nil && (!errors.Is(err, cli.ErrNothingToRead) || a.ctx.Err() != nil) {
				return err
			}
			if strings.TrimSpace(string(line)) != "yes" {
				return errHostKeyRefused
			}
		}
	}
	added, err := pin(ctx, khFile, []string{instance, addr}, key, *replace)
	if err != nil {
		return err
	}
	if len(cfg.KnownHosts) > 0 && !slices.Contains(cfg.KnownHosts, khFile) {
		fmt.Fprintf(a.stderr, "%s: warning: the configuration of %s reads %s, not %s\n", program, instance, strings.Join(cfg.KnownHosts, ", "), khFile)
	}
	if added {
		fmt.Fprintf(a.stderr, "%s: pinned %s key %s for %s (%s) in %s\n", program, keyType(key), fp, instance, addr, khFile)
	} else {
		fmt.Fprintf(a.stderr, "%s: %s key %s is already pinned for %s in %s\n", program, keyType(key), fp, instance, khFile)
	}
	fmt.Fprintln(a.stdout, fp)
	return nil
}

// knownKeys are the keys other than key that path pins for any of hosts, read with
// x/crypto's own known_hosts reader (hashed lines, patterns and markers included) by probing
// it with key, as the engine's check would.
func knownKeys(path string, hosts []string, key ssh.PublicKey) ([]knownhosts.KnownKey, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []knownhosts.KnownKey
	for _, h := range hosts {
		hp := h
		if _, _, err := net.SplitHostPort(h); err != nil {
			hp = net.JoinHostPort(h, strconv.Itoa(keeper.DefaultPort))
		}
		err := cb(hp, probeAddr(hp), key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case err == nil:
		case errors.As(err, &re):
			return nil, fmt.Errorf("%s: %s key %s is revoked (%s:%d): %w", h, keyType(key), ssh.FingerprintSHA256(key), re.Revoked.Filename, re.Revoked.Line, errHostKeyRefused)
		case errors.As(err, &ke):
			for _, k := range ke.Want {
				if !slices.ContainsFunc(out, func(o knownhosts.KnownKey) bool { return o.Filename == k.Filename && o.Line == k.Line }) {
					out = append(out, k)
				}
			}
		default:
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return out, nil
}

// probeAddr is the remote address knownhosts wants beside the host name (which it prefers).
type probeAddr string

func (a probeAddr) Network() string { return "tcp" }
func (a probeAddr) String() string  { return string(a) }

func describeKeys(ks []knownhosts.KnownKey) string {
	var s []string
	for _, k := range ks {
		s = append(s, fmt.Sprintf("%s %s (line %d)", keyType(k.Key), ssh.FingerprintSHA256(k.Key), k.Line))
	}
	return strings.Join(s, ", ")
}

func keyType(k ssh.PublicKey) string {
	switch k.Type() {
	case ssh.KeyAlgoED25519:
		return "ED25519"
	case ssh.KeyAlgoRSA:
		return "RSA"
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return "ECDSA"
	}
	return strings.ToUpper(k.Type())
}

// consoleReport reads the instance's console output: the buffered output first, then the
// latest (Nitro), since the host keys are printed once, on the first boot.
func consoleReport(ctx context.Context, api keeper.EC2API, instance string) (*consolekeys.Report, error) {
	var firstErr error
	for _, latest := range []bool{false, true} {
		out, err := api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(instance), Latest: aws.Bool(latest)})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		text, err := consolekeys.Decode(aws.ToString(out.Output))
		if err != nil {
			return nil, err
		}
		r, err := consolekeys.Parse(text)
		if err != nil {
			return nil, err
		}
		if len(r.Keys) > 0 || len(r.Fingerprints) > 0 {
			return r, nil
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, consolekeys.ErrNoKeys
}

// instanceAddr is where the engine would dial the instance: its public address, else (or
// with private_ip) its private one.
func instanceAddr(ctx context.Context, api keeper.EC2API, instance string, cfg keeper.SSHConfig) (string, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if err != nil {
		return "", fmt.Errorf("%s: %w", instance, err)
	}
	for _, r := range out.Reservations {
		if len(r.Instances) > 0 {
			i := r.Instances[0]
			ip := aws.ToString(i.PublicIpAddress)
			if ip == "" || cfg.PrivateIP {
				ip = aws.ToString(i.PrivateIpAddress)
			}
			if ip == "" {
				return "", fmt.Errorf("%s: EC2 reports no address (state %s)", instance, i.State.Name)
			}
			port := cfg.Port
			if port == 0 {
				port = keeper.DefaultPort
			}
			return net.JoinHostPort(ip, strconv.Itoa(port)), nil
		}
	}
	return "", fmt.Errorf("%s: %w", instance, errNoTarget)
}

// pin adds "HOSTS KEY" to the known_hosts file, atomically (temporary file beside it, fsync,
// rename), under the file's writers' lock from its read to the rename. A host already pinned to the same key is left alone; to another key it is an
// error unless replace, which drops the old lines of those hosts.
func pin(ctx context.Context, path string, hosts []string, key ssh.PublicKey, replace bool) (bool, error) {
	unlock, err := lockFile(ctx, path)
	if err != nil {
		return false, err
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	want := map[string]bool{}
	for _, h := range hosts {
		want[knownhosts.Normalize(h)] = true
	}
	var keep [][]byte
	for n, line := range bytes.SplitAfter(old, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		_, lhosts, lkey, _, _, err := ssh.ParseKnownHosts(line)
		mine := false
		if err == nil {
			for _, h := range lhosts {
				if want[h] || hashedMatch(h, want) {
					mine = true
				}
			}
		}
		if mine && bytes.Equal(lkey.Marshal(), key.Marshal()) {
			return false, nil
		}
		if mine && lkey.Type() == key.Type() && !replace {
			return false, fmt.Errorf("%s:%d pins another %s key (%s) for %s; --replace if the host was rebuilt: %w",
				path, n+1, keyType(lkey), ssh.FingerprintSHA256(lkey), strings.Join(lhosts, ","), errHostKeyRefused)
		}
		if mine && replace {
			continue
		}
		keep = append(keep, line)
	}
	var b bytes.Buffer
	for _, l := range keep {
		b.Write(l)
		if !bytes.HasSuffix(l, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	b.WriteString(knownhosts.Line(hosts, key) + "\n")
	return true, writeAtomic(path, b.Bytes(), 0o644)
}

// hashedMatch reports whether a hashed known_hosts entry ("|1|SALT|HMAC-SHA1", ssh-keygen -H)
// names one of the hosts.
func hashedMatch(entry string, hosts map[string]bool) bool {
	f := strings.Split(entry, "|")
	if len(f) != 4 || f[0] != "" || f[1] != "1" {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(f[2])
	sum, err2 := base64.StdEncoding.DecodeString(f[3])
	if err1 != nil || err2 != nil {
		return false
	}
	for h := range hosts {
		m := hmac.New(sha1.New, salt)
		m.Write([]byte(h))
		if hmac.Equal(m.Sum(nil), sum) {
			return true
		}
	}
	return false
}

func writeAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
