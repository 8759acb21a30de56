package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestServeDebugWarnsOffLoopback: a profiler reachable from other hosts
// is warned about; on loopback it is only noted.
func TestServeDebugWarnsOffLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, level string }{{"127.0.0.1:0", "info"}, {":0", "warn"}} {
		var logs bytes.Buffer
		stop, err := serveDebug(tc.addr, zerolog.New(&logs))
		if err != nil {
			t.Fatal(err)
		}
		stop()
		if !strings.Contains(logs.String(), `"level":"`+tc.level+`"`) || !strings.Contains(logs.String(), "profiler listening") {
			t.Errorf("%s: log %s, want the listener at %s", tc.addr, logs.String(), tc.level)
		}
	}
}
