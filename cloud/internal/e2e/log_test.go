package e2e

import (
	"log/slog"
	"testing"

	"github.com/omnisync/omnisync/shared/testkit"
)

// testLogger sends warnings and errors to the test log until the test ends.
func testLogger(t testing.TB) *slog.Logger { return testkit.Logger(t) }
