package outbox

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// Ensure that each priority class is refused at its share of the budget
// (compactable 70%, normal 90%, critical 100%), that a refusal keeps every
// accepted event, and that acking frees room again.
func TestBudget_PriorityClasses(t *testing.T) {
	opts := testOptions(t)
	opts.BudgetBytes = 40_000
	opts.MinFreeDisk = -1
	o := mustOpen(t, opts)
	ctx := context.Background()
	budget := float64(opts.BudgetBytes)

	fillTo := func(frac float64) {
		t.Helper()
		for float64(o.Stats().Bytes) < frac*budget {
			mustAppend(t, o, sale(t, "SKU-1", 1))
		}
	}
	refused := func(d events.Draft) {
		t.Helper()
		before := o.Stats()
		if _, err := o.Append(ctx, []events.Draft{d}); !errors.Is(err, ErrFull) {
			t.Fatalf("%s at %.0f%% of the budget: %v, want ErrFull", d.Kind, 100*float64(before.Bytes)/budget, err)
		}
		if after := o.Stats(); after.Depth != before.Depth || after.Bytes != before.Bytes {
			t.Fatalf("a refusal changed the outbox: %+v -> %+v", before, after)
		}
	}

	// Below 70%: every class is welcome.
	mustAppend(t, o, scan(t, "0001"), deviceStatus(t, "open"), sale(t, "SKU-1", 1))

	fillTo(0.70)
	refused(scan(t, "0002"))
	mustAppend(t, o, deviceStatus(t, "open")) // normal still fits under 90%
	// All or nothing: a sale travelling with a scan is refused with it.
	before := o.Stats()
	if _, err := o.Append(ctx, []events.Draft{sale(t, "SKU-1", 1), scan(t, "0003")}); !errors.Is(err, ErrFull) {
		t.Fatalf("mixed call at 70%%: %v, want ErrFull", err)
	}
	if o.Stats().LastSeq != before.LastSeq {
		t.Fatal("half of a refused call was written")
	}

	fillTo(0.90)
	refused(deviceStatus(t, "open"))
	refused(scan(t, "0004"))
	// Critical events are accepted until the budget itself would overflow.
	var err error
	for i := 0; err == nil; i++ {
		_, err = o.Append(ctx, []events.Draft{sale(t, "SKU-1", 1)})
		if i > 1000 {
			t.Fatal("critical appends never refused")
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("critical append at the budget: %v, want ErrFull", err)
	}
	t.Log(err)
	st := o.Stats()
	saleSize := st.Bytes / st.Depth * 11 / 10
	if st.Bytes > opts.BudgetBytes || st.Bytes+saleSize < opts.BudgetBytes {
		t.Fatalf("refused at %d of %d bytes", st.Bytes, opts.BudgetBytes)
	}

	if _, err := o.Ack(o.Epoch(), st.LastSeq); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, o, scan(t, "0005"), deviceStatus(t, "open"), sale(t, "SKU-1", 1))
}

// Ensure that every class is refused while the filesystem is below the free
// space floor, and accepted again once space comes back.
func TestBudget_MinFreeDisk(t *testing.T) {
	var free atomic.Int64
	free.Store(10 << 20)
	opts := testOptions(t)
	opts.MinFreeDisk = 64 << 20
	opts.freeSpace = func(string) (int64, error) { return free.Load(), nil }
	o := mustOpen(t, opts)
	ctx := context.Background()

	if _, err := o.Append(ctx, []events.Draft{sale(t, "SKU-1", 1)}); !errors.Is(err, ErrFull) {
		t.Fatalf("critical append with 10 MiB free: %v, want ErrFull", err)
	}
	free.Store(1 << 30)
	eventually(t, 5*time.Second, func() bool {
		_, err := o.Append(ctx, []events.Draft{sale(t, "SKU-1", 1)})
		return err == nil
	}, "appends still refused after space came back")
}

// Ensure that the real statfs check is wired: a floor no disk can meet
// refuses appends, and a negative floor disables the check.
func TestBudget_MinFreeDiskStatfs(t *testing.T) {
	for _, tc := range []struct {
		name string
		min  int64
		want error
	}{
		{"impossible floor", math.MaxInt64, ErrFull},
		{"disabled", -1, nil},
		{"default", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t)
			opts.MinFreeDisk = tc.min
			o := mustOpen(t, opts)
			if _, err := o.Append(context.Background(), []events.Draft{sale(t, "SKU-1", 1)}); !errors.Is(err, tc.want) {
				t.Fatalf("Append: %v, want %v", err, tc.want)
			}
		})
	}
}
