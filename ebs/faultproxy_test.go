package ebs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// faultProxy sits between the SDK and moto_server (on 127.0.0.1) and injects the failures
// real EC2 automation meets. Each knob counts down as it fires. Every request is logged so
// tests can assert what reached EC2 (which IDs were deleted, which tokens were sent).
type faultProxy struct {
	URL string

	mu sync.Mutex
	// throttle: action ("" = any) → number of next requests answered 503 RequestLimitExceeded.
	throttle map[string]int
	// notFound: number of next DescribeVolumes naming a freshly created volume answered
	// InvalidVolume.NotFound (armed by each successful CreateVolume).
	notFound      int
	notFoundArmed map[string]int
	// attaching: volume IDs whose attachments are reported "attaching" instead of "attached".
	attaching map[string]bool
	// deviceInUse: device names AttachVolume refuses with "already in use".
	deviceInUse map[string]bool
	// dropBefore / dropAfter: action → number of next requests whose connection is closed
	// without an answer, before / after moto has processed them.
	dropBefore, dropAfter map[string]int
	// serverError: action → number of next requests answered 500 InternalError.
	serverError map[string]int
	// overload: action → number of next requests answered 503 with overloadBody (EC2's
	// "Unavailable" when empty).
	overload     map[string]int
	overloadBody string
	// thenServerError: action → action whose requests all fail with 500 once a request of
	// the first has been forwarded (DetachVolume goes through, then every DescribeVolumes
	// of the wait fails).
	thenServerError map[string]string
	// thenServerErrors: how many requests thenServerError fails (0 = all).
	thenServerErrors int

	calls    []call
	injected map[string]int // fault name → times fired
}

type call struct {
	Action string
	Form   url.Values
}

type ctxKey struct{}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{
		throttle:        map[string]int{},
		notFoundArmed:   map[string]int{},
		attaching:       map[string]bool{},
		deviceInUse:     map[string]bool{},
		injected:        map[string]int{},
		dropBefore:      map[string]int{},
		dropAfter:       map[string]int{},
		serverError:     map[string]int{},
		overload:        map[string]int{},
		thenServerError: map[string]string{},
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = p.modifyResponse
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, rp)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *faultProxy) set(f func(p *faultProxy)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *faultProxy) fired(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected[name]
}

// callsOf returns the logged requests of one action.
func (p *faultProxy) callsOf(action string) []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []url.Values
	for _, c := range p.calls {
		if c.Action == action {
			out = append(out, c.Form)
		}
	}
	return out
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request, rp *httputil.ReverseProxy) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))

	p.mu.Lock()
	p.calls = append(p.calls, call{Action: action, Form: form})
	fault, overloadBody := "", p.overloadBody
	switch {
	case p.throttle[action] > 0:
		p.throttle[action]--
		fault = "throttle"
	case p.throttle[""] > 0:
		p.throttle[""]--
		fault = "throttle"
	case p.serverError[action] > 0:
		p.serverError[action]--
		fault = "server-error"
	case p.overload[action] > 0:
		p.overload[action]--
		fault = "overload"
	case p.dropBefore[action] > 0:
		p.dropBefore[action]--
		fault = "drop-before"
	case p.dropAfter[action] > 0:
		p.dropAfter[action]--
		fault = "drop-after"
	case action == "AttachVolume" && p.deviceInUse[form.Get("Device")]:
		fault = "device-in-use"
	case action == "DescribeVolumes":
		for _, id := range volumeIDs(form) {
			if p.notFoundArmed[id] > 0 {
				p.notFoundArmed[id]--
				fault = "not-found"
				break
			}
		}
	}
	if fault != "" {
		p.injected[fault]++
	} else if next, ok := p.thenServerError[action]; ok {
		delete(p.thenServerError, action)
		p.serverError[next] = 1 << 20
		if p.thenServerErrors > 0 {
			p.serverError[next] = p.thenServerErrors
		}
	}
	p.mu.Unlock()

	switch fault {
	case "throttle":
		ec2Error(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
	case "server-error":
		ec2Error(w, http.StatusInternalServerError, "InternalError", "An internal error has occurred")
	case "overload":
		if overloadBody == "" {
			ec2Error(w, http.StatusServiceUnavailable, "Unavailable", "The server is overloaded and can't handle the request.")
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, overloadBody)
		}
	case "device-in-use":
		d := form.Get("Device")
		ec2Error(w, http.StatusBadRequest, "InvalidParameterValue",
			fmt.Sprintf("Invalid value '%s' for unixDevice. Attachment point %s is already in use", d, d))
	case "not-found":
		ec2Error(w, http.StatusBadRequest, "InvalidVolume.NotFound", "The volume does not exist.")
	case "drop-before":
		hangUp(w)
	case "drop-after":
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), ctxKey{}, action)))
		hangUp(w)
	default:
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, action)))
	}
}

// hangUp closes the client connection without an answer, as a dropped connection does.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func volumeIDs(form url.Values) []string {
	var ids []string
	for k, v := range form {
		if strings.HasPrefix(k, "VolumeId.") {
			ids = append(ids, v...)
		}
	}
	return ids
}

var (
	reVolumeID     = regexp.MustCompile(`<volumeId>(vol-[0-9a-f]+)</volumeId>`)
	reAttachStatus = regexp.MustCompile(`(?s)(<attachmentSet>.*?</attachmentSet>)`)
)

func (p *faultProxy) modifyResponse(resp *http.Response) error {
	action, _ := resp.Request.Context().Value(ctxKey{}).(string)
	if resp.StatusCode != http.StatusOK || (action != "CreateVolume" && action != "DescribeVolumes") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	p.mu.Lock()
	switch action {
	case "CreateVolume":
		if m := reVolumeID.FindSubmatch(body); m != nil && p.notFound > 0 {
			p.notFoundArmed[string(m[1])] = p.notFound
		}
	case "DescribeVolumes":
		for id := range p.attaching {
			body = rewriteAttaching(body, id, &p.injected)
		}
	}
	p.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// rewriteAttaching turns "attached" into "attaching" in the attachment set of volume id.
func rewriteAttaching(body []byte, id string, injected *map[string]int) []byte {
	items := bytes.Split(body, []byte("<volumeId>"+id+"</volumeId>"))
	if len(items) < 2 {
		return body
	}
	return reAttachStatus.ReplaceAllFunc(body, func(set []byte) []byte {
		if !bytes.Contains(set, []byte("<volumeId>"+id+"</volumeId>")) {
			return set
		}
		if bytes.Contains(set, []byte("<status>attached</status>")) {
			(*injected)["attaching"]++
		}
		return bytes.ReplaceAll(set, []byte("<status>attached</status>"), []byte("<status>attaching</status>"))
	})
}

func ec2Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`, code, msg)
}
