package jsonc

import (
	"bufio"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// oracleSource drives the machine's real json-c (libjson-c5, which cryptsetup links): for
// each length-prefixed input on stdin it runs json_tokener_parse_ex on a fresh tokener,
// as cryptsetup does, and answers with the parse end, a flag, and the
// PLAIN|NOSLASHESCAPE string. The prototypes are declared here because Debian ships
// json-c's headers only in libjson-c-dev.
const oracleSource = `
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
struct json_object; struct json_tokener;
extern struct json_tokener *json_tokener_new(void);
extern void json_tokener_free(struct json_tokener *);
extern struct json_object *json_tokener_parse_ex(struct json_tokener *, const char *, int);
extern int json_tokener_get_error(struct json_tokener *);
extern size_t json_tokener_get_parse_end(struct json_tokener *);
extern const char *json_object_to_json_string_ext(struct json_object *, int);
extern int json_object_put(struct json_object *);
static void put32(uint32_t v){ fwrite(&v,4,1,stdout); }
int main(void){
  uint32_t n;
  while (fread(&n,4,1,stdin)==1) {
    char *buf = malloc(n+1);
    if (fread(buf,1,n,stdin)!=n) return 1;
    struct json_tokener *t = json_tokener_new();
    struct json_object *o = json_tokener_parse_ex(t, buf, (int)n);
    int ok = o != NULL && json_tokener_get_error(t) == 0;
    put32(ok); put32((uint32_t)json_tokener_get_parse_end(t));
    const char *s = ok ? json_object_to_json_string_ext(o, 0 | (1<<4)) : "";
    put32((uint32_t)strlen(s)); fwrite(s,1,strlen(s),stdout); fflush(stdout);
    if (o) json_object_put(o);
    json_tokener_free(t); free(buf);
  }
  return 0;
}
`

type oracle struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Reader
}

type oracleResult struct {
	ok  bool
	end int
	out []byte
}

var (
	oracleOnce sync.Once
	oracleInst *oracle
	oracleErr  string
)

// jsonC returns the json-c oracle, or skips/fails tb when gcc or libjson-c is missing.
func jsonC(tb testing.TB) *oracle {
	if buildOracle() == nil {
		testenv.Missing(tb, "the json-c oracle ("+oracleErr+")", "apt-get install gcc libc6-dev libjson-c5")
	}
	return oracleInst
}

// buildOracle compiles and starts the oracle once; nil when it cannot.
func buildOracle() *oracle {
	oracleOnce.Do(func() {
		libs, _ := filepath.Glob("/usr/lib/*/libjson-c.so.5")
		if len(libs) == 0 {
			oracleErr = "libjson-c.so.5"
			return
		}
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			oracleErr = "gcc"
			return
		}
		dir, err := os.MkdirTemp("", "jsonc-oracle")
		if err != nil {
			oracleErr = err.Error()
			return
		}
		src := filepath.Join(dir, "oracle.c")
		bin := filepath.Join(dir, "oracle")
		if err := os.WriteFile(src, []byte(oracleSource), 0o600); err != nil {
			oracleErr = err.Error()
			return
		}
		if out, err := exec.Command(gcc, "-O", "-o", bin, src, libs[0]).CombinedOutput(); err != nil {
			oracleErr = "compiling the json-c oracle: " + string(out)
			return
		}
		cmd := exec.Command(bin)
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			oracleErr = err.Error()
			return
		}
		oracleInst = &oracle{in: in, out: bufio.NewReader(out)}
	})
	return oracleInst
}

func (o *oracle) parse(tb testing.TB, data []byte) oracleResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	var hdr [4]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(data)))
	if _, err := o.in.Write(append(hdr[:], data...)); err != nil {
		tb.Fatalf("json-c oracle: %v", err)
	}
	var r [12]byte
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(o.out, r[:]); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("json-c oracle: %v", err)
		}
	case <-time.After(10 * time.Second):
		tb.Fatalf("json-c oracle gave no answer for %q", data)
	}
	res := oracleResult{ok: binary.LittleEndian.Uint32(r[0:]) == 1, end: int(binary.LittleEndian.Uint32(r[4:]))}
	res.out = make([]byte, binary.LittleEndian.Uint32(r[8:]))
	if _, err := io.ReadFull(o.out, res.out); err != nil {
		tb.Fatalf("json-c oracle: %v", err)
	}
	return res
}

// checkAgainstJSONC asserts the contract with json-c: whatever Parse accepts, json-c
// accepts too, consuming the same bytes and printing what Marshal prints.
func checkAgainstJSONC(tb testing.TB, o *oracle, data []byte) (accepted bool) {
	tb.Helper()
	v, n, err := Parse(data)
	if err != nil {
		return false
	}
	r := o.parse(tb, data)
	if !r.ok {
		tb.Fatalf("Parse accepted %q, json-c refuses it", data)
	}
	if r.end != n {
		tb.Fatalf("Parse of %q consumed %d bytes, json-c %d", data, n, r.end)
	}
	if got := Marshal(v); string(got) != string(r.out) {
		tb.Fatalf("Marshal of %q:\n got %q\nwant %q (json-c)", data, got, r.out)
	}
	return true
}
