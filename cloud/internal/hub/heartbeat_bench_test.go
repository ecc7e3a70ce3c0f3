package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnisync/omnisync/shared/subjects"
	"github.com/omnisync/omnisync/shared/syncproto"
	"github.com/omnisync/omnisync/shared/testkit"
)

// pgCounters are PostgreSQL's cumulative statistics that say what the hub
// cost its database.
type pgCounters struct {
	commits   int64 // transactions committed in the hub's database
	walSyncs  int64 // WAL flushes to disk
	hbRows    int64 // device_heartbeats rows inserted or updated
	progReads int64 // scans of device_progress (watermark reads)
}

func readCounters(ctx context.Context, b *testing.B, dsn string) pgCounters {
	b.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var c pgCounters
	err = conn.QueryRow(ctx, `SELECT
	(SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
	(SELECT wal_sync FROM pg_stat_wal),
	(SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = 'device_heartbeats'),
	(SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables WHERE relname = 'device_progress')`).
		Scan(&c.commits, &c.walSyncs, &c.hbRows, &c.progReads)
	if err != nil {
		b.Fatal(err)
	}
	// This query's own transaction is counted too; one per reading.
	return c
}

// statsSettle is how long PostgreSQL may keep a backend's statistics
// before publishing them (PGSTAT_IDLE_INTERVAL is 10 s).
const statsSettle = 11 * time.Second

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkHeartbeatFleet measures what agents' heartbeats cost the hub's
// PostgreSQL: OMNI_HB_DEVICES (2000) simulated devices send a heartbeat
// every 5 s for OMNI_HB_WINDOW seconds (20) to one hub, and the database's
// own statistics are compared before and after. Reported per second of
// the window: transactions committed, WAL flushes, heartbeat rows written
// and watermark reads, and the share of heartbeats answered within 5 s.
// "caught-up" devices have nothing unconfirmed;
// "backlogged" ones all report events the hub has not confirmed, so the
// hub must look their watermarks up.
//
//	go test -run '^$' -bench BenchmarkHeartbeatFleet -benchtime 1x ./cloud/internal/hub/
func BenchmarkHeartbeatFleet(b *testing.B) {
	devices := envInt("OMNI_HB_DEVICES", 2000)
	window := time.Duration(envInt("OMNI_HB_WINDOW", 20)) * time.Second
	for _, tc := range []struct {
		name    string
		backlog int64
	}{{"caught-up", 0}, {"backlogged", 40}} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				benchHeartbeats(b, devices, window, tc.backlog)
			}
		})
	}
}

func benchHeartbeats(b *testing.B, devices int, window time.Duration, backlog int64) {
	pg := testkit.StartPGServer(b)
	_, nc := startHub(b, pg.DSN())
	ctx := context.Background()
	time.Sleep(statsSettle) // the hub's start-up work, out of the figures
	before := readCounters(ctx, b, pg.DSN())
	b.ResetTimer()
	var sent, answered atomic.Int64
	lctx, stop := context.WithTimeout(ctx, window)
	var wg sync.WaitGroup
	for i := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			storeID, device := fmt.Sprintf("S%04d", i), "pos-1"
			// Devices started at different moments: spread over the period.
			phase := time.Duration(rand.Int64N(int64(5 * time.Second)))
			select {
			case <-lctx.Done():
				return
			case <-time.After(phase):
			}
			tick := time.NewTicker(5 * time.Second)
			defer tick.Stop()
			for {
				hb := syncproto.Heartbeat{Store: storeID, Device: device, Epoch: 1, Version: "bench",
					Backlog: backlog, PublishedSeq: uint64(backlog), AgentTimeMS: time.Now().UnixMilli()}
				if backlog > 0 {
					hb.OldestUnackedMS = 800
				}
				body, _ := json.Marshal(hb)
				sent.Add(1)
				if _, err := nc.Request(subjects.HubSync(storeID, device), body, 5*time.Second); err == nil {
					answered.Add(1)
				}
				select {
				case <-lctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	stop()
	b.StopTimer()
	time.Sleep(statsSettle) // let every backend publish its statistics
	after := readCounters(ctx, b, pg.DSN())
	secs := window.Seconds()
	per := func(a, z int64) float64 { return float64(z-a-1) / secs } // -1: the reading's own transaction
	b.ReportMetric(float64(sent.Load())/secs, "heartbeats/s")
	b.ReportMetric(per(before.commits, after.commits), "db-commits/s")
	b.ReportMetric(float64(after.walSyncs-before.walSyncs)/secs, "wal-fsyncs/s")
	b.ReportMetric(float64(after.hbRows-before.hbRows)/secs, "hb-rows/s")
	b.ReportMetric(float64(after.progReads-before.progReads)/secs, "wm-reads/s")
	b.ReportMetric(100*float64(answered.Load())/float64(max(1, sent.Load())), "%answered")
	b.ReportMetric(0, "ns/op")
}
