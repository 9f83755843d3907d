package awstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// StartProxy puts an HTTP reverse proxy on 127.0.0.1 in front of target (moto, the metadata
// mock) and returns its URL. fault sees every request with its body already read (an EC2
// Query request's form is in it); when it returns true it has written the answer itself and
// the request is not forwarded. This injects what the real parts cannot be made to do (a
// persistent 5xx, a metadata service that refuses IMDSv2 tokens) while everything else is
// answered by the real part.
func StartProxy(t testing.TB, target string, fault func(w http.ResponseWriter, r *http.Request, body []byte) bool) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("awstest: proxy target %q: %v", target, err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		if fault != nil && fault(w, r, body) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// EC2Error writes an EC2 Query API error answer, as EC2 sends it.
func EC2Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>awstest-proxy</RequestID></Response>`, code, msg)
}
