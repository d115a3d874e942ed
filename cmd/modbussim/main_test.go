package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-sdm630-unit", "248"},
		{"-inverter-unit", "-1"},
		{"-update", "soon"},
		{"-no-such-flag"},
	} {
		require.Error(t, run(context.Background(), args, &bytes.Buffer{}), "%v", args)
	}
}

// With its context ended, run stops and returns nil after it served.
func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"-tcp", "127.0.0.1:0", "-rtuovertcp", "127.0.0.1:0"}, &out))
	require.Contains(t, out.String(), "RTU over TCP on 127.0.0.1:")
}
