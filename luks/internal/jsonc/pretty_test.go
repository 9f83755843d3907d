package jsonc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMarshalPretty: json-c's pretty layout (empty containers still open a line, no space
// after the colon, no final newline), PLAIN's escaping, and a round trip to the same tree.
func TestMarshalPretty(t *testing.T) {
	in := `{"a":{},"b":[],"c":[1,{"k":"v/\"\u0001"}],"d":1.50,"e":null,"f":true}`
	v, _, err := Parse([]byte(in))
	require.NoError(t, err)
	want := "{\n  \"a\":{\n  },\n  \"b\":[\n  ],\n  \"c\":[\n    1,\n    {\n      \"k\":\"v/\\\"\\u0001\"\n    }\n  ],\n" +
		"  \"d\":1.50,\n  \"e\":null,\n  \"f\":true\n}"
	got := MarshalPretty(v)
	assert.Equal(t, want, string(got))
	back, _, err := Parse(got)
	require.NoError(t, err)
	assert.True(t, Equal(v, back))
	assert.Equal(t, "null", string(MarshalPretty(nil)))
}
