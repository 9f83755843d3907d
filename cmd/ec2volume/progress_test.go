package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cloudluks/cloudluks/ebs"
)

// Without -v only warnings reach stderr, SDK warnings included; the IMDSv1 fallback alone
// waits for -v. The SDK lines are the ones aws-sdk-go-v2 logs (imds token_provider.go,
// ec2rolecreds provider.go), as ebs turns them into Events.
func TestProgressFilter(t *testing.T) {
	fallback := ebs.Event{Op: "metadata", Warning: true, Message: "falling back to IMDSv1: operation error ec2imds: getToken, http response error StatusCode: 403"}
	extension := ebs.Event{Op: "sdk", Warning: true, Message: "Attempting credential expiration extension due to a credential service availability issue. A refresh of these credentials will be attempted again in 5 minutes."}
	retry := ebs.Event{Op: "detach", VolumeID: "vol-0abc", Warning: true, Message: "retrying DetachVolume: InternalError (attempt 2 of 8)"}
	state := ebs.Event{Op: "attach", VolumeID: "vol-0abc", State: "attached"}
	sdkDebug := ebs.Event{Op: "sdk", Message: "request sent"}

	tests := []struct {
		name    string
		e       ebs.Event
		quiet   string // printed without -v
		verbose string // printed with -v
	}{
		{"IMDSv1Fallback", fallback, "", "ec2volume: warning: metadata " + fallback.Message + "\n"},
		{"SDKWarning", extension, "ec2volume: warning: sdk " + extension.Message + "\n", "ec2volume: warning: sdk " + extension.Message + "\n"},
		{"Retry", retry, "ec2volume: warning: detach vol-0abc " + retry.Message + "\n", "ec2volume: warning: detach vol-0abc " + retry.Message + "\n"},
		{"StateChange", state, "", "ec2volume: attach vol-0abc attached\n"},
		{"SDKDebug", sdkDebug, "", "ec2volume: sdk request sent\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, verbose := range []bool{false, true} {
				var stderr bytes.Buffer
				g := &globals{stderr: &stderr, verbose: verbose}
				g.progress(tc.e)
				want := tc.quiet
				if verbose {
					want = tc.verbose
				}
				assert.Equal(t, want, stderr.String(), "-v=%v", verbose)
			}
		})
	}
}
