package ebs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The delays between polls grow by the factor up to the cap and never leave (0, max], even
// for factors whose product overflows time.Duration (which made the delay negative: a poll
// loop without pause).
func TestBackoffDelays(t *testing.T) {
	tests := []struct {
		name   string
		w      WaitOptions
		want   []time.Duration
		bounds time.Duration
	}{
		{"defaults", WaitOptions{}.withDefaults(),
			[]time.Duration{time.Second, 1500 * time.Millisecond, 2250 * time.Millisecond, 3375 * time.Millisecond}, DefaultPollMax},
		{"capped", WaitOptions{PollInitial: time.Millisecond, PollMax: 4 * time.Millisecond, PollFactor: 2}.withDefaults(),
			[]time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}, 4 * time.Millisecond},
		{"huge factor", WaitOptions{PollInitial: time.Millisecond, PollMax: 5 * time.Millisecond, PollFactor: 1e300}.withDefaults(),
			[]time.Duration{time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}, 5 * time.Millisecond},
		{"huge cap", WaitOptions{PollInitial: time.Hour, PollMax: time.Duration(1<<63 - 1), PollFactor: 1e10}.withDefaults(),
			[]time.Duration{time.Hour}, time.Duration(1<<63 - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bo := tt.w.backoff()
			for i, want := range tt.want {
				assert.Equal(t, want, bo.delay(), "delay %d", i)
			}
			for i := 0; i < 100; i++ {
				d := bo.delay()
				assert.Positive(t, d)
				assert.LessOrEqual(t, d, tt.bounds)
			}
		})
	}
}
