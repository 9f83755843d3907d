package ebs

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Options.Progress runs under the Client's lock, and a Client from NewFromConfig shares that
// lock with the SDK log lines of its configuration (WithProgress, or the logger it installs
// itself): the SDK logs from goroutines of its own.
func TestProgressSerialized(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	blocking := func(Event) { close(entered); <-release }

	c := New(nil, Options{Progress: blocking})
	done := make(chan struct{})
	go func() { c.progress(Event{Op: "attach"}); close(done) }()
	<-entered
	assert.False(t, c.sink.mu.TryLock(), "the callback runs with the lock held")
	close(release)
	<-done
	require.True(t, c.sink.mu.TryLock(), "and it is released afterwards")
	c.sink.mu.Unlock()

	ctx := context.Background()
	for name, load := range map[string][]func(*config.LoadOptions) error{
		"WithProgress": {WithProgress(func(Event) {})},
		"Installed":    nil,
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := LoadDefaultConfig(ctx, append(load, config.WithRegion("us-east-1"))...)
			require.NoError(t, err)
			c := NewFromConfig(cfg, Options{Progress: func(Event) {}})
			l, ok := c.api.(*ec2.Client).Options().Logger.(eventLogger)
			require.True(t, ok, "the SDK logs through an eventLogger")
			assert.Same(t, c.sink.mu, l.sink.mu, "one lock for SDK lines and the Client's events")
		})
	}
}
