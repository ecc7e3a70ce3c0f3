package gs1

import (
	"testing"

	"github.com/omnisync/omnisync/shared/testkit/corpustest"
)

// The corpus helpers live in corpustest; these names keep the tests short.
type row = corpustest.Row

var errNotApplicable = corpustest.ErrNotApplicable

func loadRows(t *testing.T, rel string) []row {
	t.Helper()
	return corpustest.Load(t, rel)
}

func runCorpus(t *testing.T, rel string, exceptions map[string]string, check func(r row) error) {
	t.Helper()
	corpustest.Run(t, rel, exceptions, check)
}
