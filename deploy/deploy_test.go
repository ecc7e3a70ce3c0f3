// Package deploy holds how omnisync is run in production: systemd units,
// the container image, the compose chain, the Helm chart, Prometheus
// alerts and Grafana dashboards. Its tests check them with the tools this
// machine has (systemd-analyze, promtool, nats-server, helm when
// installed) and against the code: every metric an alert or a dashboard
// names must be one the binaries register, every OMNI_ variable a setting
// the binary has.
package deploy

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omnisync/omnisync/shared/natsacct"
	"github.com/omnisync/omnisync/shared/testkit"
)

// tool returns the path of a command the test needs. Under CI (or `make
// deploy-check`, which sets OMNI_DEPLOY_CHECK) a missing tool fails the
// test; elsewhere it skips, naming the package that provides it.
func tool(t *testing.T, name, provider string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gobin := filepath.Join(goEnv(t, "GOPATH"), "bin", name)
	if _, err := os.Stat(gobin); err == nil {
		return gobin
	}
	if os.Getenv("CI") != "" || os.Getenv("OMNI_DEPLOY_CHECK") != "" {
		t.Fatalf("%s is required (%s)", name, provider)
	}
	t.Skipf("%s not installed (%s); make deploy-check installs it", name, provider)
	return ""
}

func goEnv(t *testing.T, key string) string {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// registeredMetrics is every metric name the binaries register: the
// omni_ names in the non-test Go sources of cloud/ and edge/ (with the
// series a histogram adds), and the Go and process collectors' names the
// dashboards use.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{"up": true, "go_goroutines": true, "go_memstats_heap_inuse_bytes": true,
		"process_resident_memory_bytes": true, "process_cpu_seconds_total": true}
	lit := regexp.MustCompile(`"(omni_[a-z0-9_]+)"`)
	for _, dir := range []string{"../cloud", "../edge"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
				names[m[1]] = true
				if strings.Contains(string(b), "NewHistogram") {
					for _, s := range []string{"_bucket", "_sum", "_count"} {
						names[m[1]+s] = true
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\b(omni_[a-z0-9_]+|go_[a-z0-9_]+|process_[a-z0-9_]+|up)\b\s*[{\[)]`)

// checkNames fails for each metric expr names that the code does not
// register.
func checkNames(t *testing.T, where, expr string, known map[string]bool) int {
	t.Helper()
	n := 0
	for _, m := range metricName.FindAllStringSubmatch(expr, -1) {
		n++
		if !known[m[1]] {
			t.Errorf("%s: metric %s is registered nowhere in cloud/ or edge/", where, m[1])
		}
	}
	return n
}

// TestAlertRules runs promtool over the alert rules and their unit tests,
// and checks every metric they name exists.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool", "Debian package prometheus")
	run(t, promtool, "check", "rules", "prometheus/alerts.yml")
	out := run(t, promtool, "test", "rules", "prometheus/alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	known := registeredMetrics(t)
	tested, _ := os.ReadFile("prometheus/alerts_test.yml")
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if checkNames(t, r.Alert, r.Expr, known) == 0 {
				t.Errorf("%s: names no metric", r.Alert)
			}
			if !strings.Contains(string(tested), "alertname: "+r.Alert+"\n") {
				t.Errorf("%s: no case in alerts_test.yml", r.Alert)
			}
		}
	}
	t.Logf("%d alerts, each tested by promtool", n)

	// The compose chain's Prometheus configuration, with its files where
	// the container has them.
	dir := t.TempDir()
	cfg, _ := os.ReadFile("prometheus/prometheus.yml")
	cfg = []byte(strings.NewReplacer("/etc/prometheus/alerts.yml", filepath.Join(dir, "alerts.yml"),
		"/run/secrets/hub-metrics-token", filepath.Join(dir, "token")).Replace(string(cfg)))
	for name, data := range map[string][]byte{"prometheus.yml": cfg, "alerts.yml": b, "token": []byte("omni_x\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run(t, promtool, "check", "config", filepath.Join(dir, "prometheus.yml"))
}

// grafanaVars stands in for the dashboards' template variables, so their
// queries parse as plain PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*", "$store", ".*")

// TestDashboards checks each dashboard is valid JSON that Grafana's
// provisioning loads (uid, title, panels with unique ids and a position),
// that every panel's query parses as PromQL (promtool checks them as
// recording rules), and that every metric named exists in the code.
func TestDashboards(t *testing.T) {
	promtool := tool(t, "promtool", "Debian package prometheus")
	files, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(files) < 2 {
		t.Fatalf("dashboards %v; want the hub's and the fleet's", files)
	}
	known := registeredMetrics(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	uids := map[string]bool{}
	queries := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID, Title    string
			SchemaVersion int
			Panels        []struct {
				ID      int
				Title   string
				GridPos *struct{ X, Y, W, H int }
				Targets []struct{ Expr, RefID string }
			}
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 || len(d.Panels) == 0 || uids[d.UID] {
			t.Errorf("%s: uid %q, title %q, schemaVersion %d, %d panels: Grafana needs a unique uid, a title, a schema version and panels", f, d.UID, d.Title, d.SchemaVersion, len(d.Panels))
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] || p.GridPos == nil || p.GridPos.W == 0 || len(p.Targets) == 0 {
				t.Errorf("%s: panel %d %q: duplicate id, no position or no query", f, p.ID, p.Title)
			}
			ids[p.ID] = true
			for _, q := range p.Targets {
				where := fmt.Sprintf("%s: panel %q %s", filepath.Base(f), p.Title, q.RefID)
				expr := grafanaVars.Replace(q.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("%s: unknown variable in %s", where, q.Expr)
				}
				if checkNames(t, where, expr, known) == 0 {
					t.Errorf("%s: names no metric: %s", where, q.Expr)
				}
				queries++
				fmt.Fprintf(&rules, "      - record: dashboard:q%d\n        expr: %q\n", queries, expr)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, promtool, "check", "rules", path)
	t.Logf("%d dashboards, %d queries parsed as PromQL", len(files), queries)
}

// settings lists the OMNI_ environment variables a binary takes: one per
// flag in its --help.
func settings(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	flag := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`)
	env := map[string]bool{}
	for _, m := range flag.FindAllStringSubmatch(string(out), -1) {
		if m[1] != "help" && m[1] != "version" {
			env["OMNI_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
		}
	}
	if len(env) < 5 {
		t.Fatalf("%s --help lists %d settings:\n%s", bin, len(env), out)
	}
	return env
}

// TestCompose parses the compose file and checks what an engine would
// trip over: services that depend on services that exist, files mounted
// from the repository that exist, named volumes and secrets declared, the
// NATS routes naming the cluster's services, Prometheus scraping the hubs,
// and every OMNI_ variable given to a hub being a setting omni-hub has.
func TestCompose(t *testing.T) {
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Image       string
		Build       *struct{ Context, Dockerfile string }
		Environment map[string]string
		Volumes     []string
		DependsOn   any `yaml:"depends_on"`
		Secrets     []struct{ Source string }
	}
	var c struct {
		Services map[string]service
		Volumes  map[string]any
		Secrets  map[string]any
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	want := []string{"nats-1", "nats-2", "nats-3", "hub-1", "hub-2", "postgres", "prometheus", "grafana"}
	for _, s := range want {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("no service %s", s)
		}
	}
	hubEnv := settings(t, testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-hub"))
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join("compose", s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: build: %v", name, err)
			}
		}
		var deps []string
		switch d := s.DependsOn.(type) {
		case []any:
			for _, v := range d {
				deps = append(deps, fmt.Sprint(v))
			}
		case map[string]any:
			for k := range d {
				deps = append(deps, k)
			}
		}
		for _, d := range deps {
			if _, ok := c.Services[d]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, d)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts volume %s, which is not declared", name, src)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec.Source]; !ok {
				t.Errorf("%s uses secret %s, which is not declared", name, sec.Source)
			}
		}
		if strings.HasPrefix(name, "hub-") {
			for k := range s.Environment {
				if !hubEnv[k] {
					t.Errorf("%s: %s is not a setting of omni-hub", name, k)
				}
			}
			for _, k := range []string{"OMNI_NATS_URL", "OMNI_DB", "OMNI_PUBLIC_URL", "OMNI_STREAM_REPLICAS"} {
				if s.Environment[k] == "" {
					t.Errorf("%s: %s not set", name, k)
				}
			}
			if s.Environment["OMNI_STREAM_REPLICAS"] != "3" {
				t.Errorf("%s: a 3-node cluster keeps the events stream on 3 replicas", name)
			}
			for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
				if !strings.Contains(s.Environment["OMNI_NATS_URL"], "@"+n+":4222") {
					t.Errorf("%s: OMNI_NATS_URL does not name %s", name, n)
				}
			}
		}
	}
	node, _ := os.ReadFile("compose/nats-node.conf")
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		if !strings.Contains(string(node), "nats-route://"+n+":6222") {
			t.Errorf("nats-node.conf: no route to %s", n)
		}
	}
	prom, _ := os.ReadFile("prometheus/prometheus.yml")
	for _, h := range []string{"hub-1:8080", "hub-2:8080"} {
		if !strings.Contains(string(prom), h) {
			t.Errorf("prometheus.yml does not scrape %s", h)
		}
	}
}

// TestNATSClusterConfig starts three real nats-server processes with the
// compose file's node configuration (hosts and ports moved to loopback)
// and waits for them to form one cluster with a JetStream meta leader.
func TestNATSClusterConfig(t *testing.T) {
	bin := tool(t, "nats-server", "Debian package nats-server")
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "omnisync"), os.DirFS("nats")); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile("compose/nats-node.conf")
	var routes, clients, monitors [3]string
	for i := range 3 {
		routes[i], clients[i], monitors[i] = testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	}
	for i := range 3 {
		r := strings.NewReplacer("0.0.0.0:6222", routes[i], "nats-1:6222", routes[0], "nats-2:6222", routes[1], "nats-3:6222", routes[2],
			"http_port: 8222", "http: "+monitors[i])
		path := filepath.Join(dir, fmt.Sprintf("node-%d.conf", i+1))
		if err := os.WriteFile(path, []byte(r.Replace(string(conf))), 0o600); err != nil {
			t.Fatal(err)
		}
		_, port, _ := strings.Cut(clients[i], ":")
		cmd := exec.Command(bin, "-c", path, "-a", "127.0.0.1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("NATS_NODE=nats-%d", i+1), "OMNI_NATS_PORT="+port,
			"OMNI_NATS_STORE_DIR="+filepath.Join(dir, fmt.Sprintf("js-%d", i+1)),
			"OMNI_HUB_PASSWORD=$2a$11$abcdefghijklmnopqrstuuH8ufB1kQ3ltU7wcY1JkzK2t4z4V9mmW")
		var logs strings.Builder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("nats-%d:\n%s", i+1, logs.String())
			}
		})
	}
	type varz struct {
		ServerName string `json:"server_name"`
		Cluster    struct{ Name string }
		JetStream  struct {
			Meta *struct {
				Leader      string
				ClusterSize int `json:"cluster_size"`
			}
		} `json:"jetstream"`
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		for i, m := range monitors {
			var v varz
			resp, err := http.Get("http://" + m + "/varz")
			if err != nil {
				return false
			}
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err != nil || v.ServerName != fmt.Sprintf("nats-%d", i+1) || v.Cluster.Name != "omnisync" ||
				v.JetStream.Meta == nil || v.JetStream.Meta.ClusterSize != 3 || v.JetStream.Meta.Leader == "" {
				return false
			}
		}
		return true
	}, "three nodes named nats-1..3 in cluster omnisync with a JetStream meta leader")
}

// units are the systemd units and the example configuration each runs.
var units = []struct{ unit, pkg, config string }{
	{"omni-edge.service", "github.com/omnisync/omnisync/edge/cmd/omni-edge", "agent.yaml"},
	{"omni-hub.service", "github.com/omnisync/omnisync/cloud/cmd/omni-hub", "hub.yaml"},
}

// TestSystemdUnits verifies the units with systemd-analyze (with
// ExecStart pointed at binaries built from this tree), reports their
// exposure score, checks the hardening each promises, and starts each
// binary with the unit's arguments and the example configuration, inside
// an emulation of the unit's sandbox (see sandbox), until it serves
// /healthz.
func TestSystemdUnits(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "Debian package systemd")
	dir := t.TempDir()
	for _, u := range units {
		bin := testkit.BuildBinary(t, u.pkg)
		b, err := os.ReadFile(filepath.Join("systemd", u.unit))
		if err != nil {
			t.Fatal(err)
		}
		unit := string(b)
		for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "DevicePolicy=closed", "StateDirectory=", "User=", "CapabilityBoundingSet=\n"} {
			if !strings.Contains(unit, want) {
				t.Errorf("%s: no %s", u.unit, strings.TrimSpace(want))
			}
		}
		start := regexp.MustCompile(`(?m)^ExecStart=(\S+) (.*)$`).FindStringSubmatch(unit)
		if start == nil {
			t.Fatalf("%s: no ExecStart", u.unit)
		}
		local := filepath.Join(dir, u.unit)
		if err := os.WriteFile(local, []byte(strings.Replace(unit, "ExecStart="+start[1], "ExecStart="+bin, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := osexec(analyze, "verify", local); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u.unit, err, out)
		}
		sec, _ := osexec(analyze, "security", "--offline=true", "--no-pager", local)
		if m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindStringSubmatch(sec); m == nil {
			t.Errorf("systemd-analyze security %s:\n%s", u.unit, sec)
		} else {
			t.Logf("%s: exposure %s %s (systemd-analyze security --offline)", u.unit, m[1], m[2])
			if m[2] != "OK" && m[2] != "MEDIUM" {
				t.Errorf("%s: exposure %s %s; the unit should be at most MEDIUM", u.unit, m[1], m[2])
			}
		}
		t.Run(u.unit+" starts", func(t *testing.T) { startAsUnit(t, bin, strings.Fields(start[2]), u.config) })
	}
	if unit, _ := os.ReadFile("systemd/omni-edge.service"); !strings.Contains(string(unit), "DeviceAllow=char-ttyUSB rw") || !strings.Contains(string(unit), "DeviceAllow=char-ttyACM rw") || !strings.Contains(string(unit), "SupplementaryGroups=dialout") {
		t.Error("omni-edge.service: serial ports (ttyUSB, ttyACM) and the dialout group must be allowed")
	}
}

func osexec(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// startAsUnit runs bin with the unit's arguments, its --config pointed at
// the example configuration in deploy/systemd, and the paths only the
// installed machine has moved into a temporary directory through the
// environment (which wins over the file), until /healthz answers.
func startAsUnit(t *testing.T, bin string, args []string, config string) {
	for i, a := range args {
		if strings.HasPrefix(a, "/etc/omnisync/") {
			abs, _ := filepath.Abs(filepath.Join("systemd", config))
			args[i] = abs
		}
	}
	sb := newSandbox(t)
	state, private := t.TempDir(), t.TempDir()
	profiles, _ := filepath.Abs("../firmware-configs")
	if sb != nil {
		bin, state, private = sb.install(t, bin), sb.state, sb.dir
		// A checkout under /tmp is hidden by the sandbox's private /tmp:
		// the configuration and the device profiles go in with the binary.
		for i, a := range args {
			if strings.HasSuffix(a, "/"+config) {
				args[i] = sb.copyIn(t, a, config)
			}
		}
		profiles = sb.copyIn(t, profiles, "firmware-configs")
		t.Logf("%s runs as uid %d with every mount read-only but %s, a private /tmp, no capabilities", filepath.Base(bin), sandboxUID, state)
	}
	http := testkit.FreeAddr(t)
	env := append(os.Environ(), "OMNI_DATA_DIR="+state, "OMNI_HTTP="+http, "OMNI_LOG_LEVEL=debug")
	if config == "hub.yaml" {
		// No NATS cluster or PostgreSQL here: the embedded server and
		// SQLite, one stream replica.
		env = append(env, "OMNI_NATS_URL=", "OMNI_NATS_LISTEN=127.0.0.1:0", "OMNI_STREAM_REPLICAS=1")
	} else {
		// A hub that is not there yet (the agent starts offline) and
		// credentials minted as omnictl stores provision mints them.
		creds := filepath.Join(private, "S42.nk")
		seed, _, err := natsacct.NewUserKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := natsacct.WriteSeed(creds, "store S42", seed); err != nil {
			t.Fatal(err)
		}
		if sb != nil {
			sb.own(t, creds)
		}
		env = append(env, "OMNI_PROFILES="+profiles, "OMNI_NATS_URL=nats://"+testkit.FreeAddr(t), "OMNI_NATS_CREDS="+creds)
	}
	argv := append([]string{bin}, args...)
	if sb != nil {
		argv = sb.wrap(argv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("%s %v:\n%s", filepath.Base(bin), args, logs.String())
		}
	})
	testkit.Eventually(t, 60*time.Second, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("%s exited: %v\n%s", filepath.Base(bin), err, logs.String())
		default:
		}
		resp, err := httpGet("http://" + http + "/healthz")
		return err == nil && resp == 200
	}, "%s --config %s serving /healthz", filepath.Base(bin), config)
}

// sandbox runs a binary the way its unit's file-system and privilege
// settings would, as far as a test can without systemd: in a mount
// namespace where every mount is read-only (ProtectSystem=strict) but the
// API file systems and the state directory (StateDirectory=), with a
// private /tmp (PrivateTmp=), as an unprivileged user with no
// capabilities and no new privileges (User=, CapabilityBoundingSet=,
// NoNewPrivileges=). The device policy is not emulated.
type sandbox struct {
	// dir holds the installed binary and private files; state is the
	// writable state directory. Both are outside /tmp, which the sandbox
	// replaces.
	dir, state string
}

// sandboxUID is the unprivileged user the sandboxed binary runs as.
const sandboxUID = 65534

// sandboxScript makes the sandbox and executes its arguments in it; $1 is
// the state directory.
const sandboxScript = `set -e
state=$1; shift
mount --bind "$state" "$state"
for mp in $(awk '{print $2}' /proc/self/mounts); do
	case "$mp" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|"$state") continue;; esac
	mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all "$@"
`

// newSandbox returns a sandbox, or nil where one cannot be made (not root,
// no unshare or setpriv); then the binaries run unconfined.
func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: the binary runs without the unit's sandbox")
		return nil
	}
	for _, c := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Logf("no %s: the binary runs without the unit's sandbox", c)
			return nil
		}
	}
	dir, err := os.MkdirTemp("/var/tmp", "omni-unit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sb := &sandbox{dir: dir, state: filepath.Join(dir, "state")}
	if err := os.Mkdir(sb.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sb.own(t, sb.state)
	// The sandbox must be in force: writes outside the state directory
	// refused, inside it allowed, and /tmp private.
	outside := filepath.Join(dir, "outside")
	probe := fmt.Sprintf("touch %s/ok && ! touch %s 2>/dev/null && [ -z \"$(ls -A /tmp)\" ] && [ \"$(id -u)\" = %d ]", sb.state, outside, sandboxUID)
	w := sb.wrap([]string{"sh", "-c", probe})
	if out, err := exec.Command(w[0], w[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("the sandbox is not in force: %v\n%s", err, out)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Fatal("the sandbox let a write outside the state directory through")
	}
	return sb
}

// wrap returns the command line that runs argv in the sandbox.
func (sb *sandbox) wrap(argv []string) []string {
	return append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", sandboxScript, "sandbox", sb.state}, argv...)
}

// install copies bin into the sandbox's directory (the test's binaries
// live under /tmp, which the sandbox hides).
func (sb *sandbox) install(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(sb.dir, filepath.Base(bin))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// copyIn copies the file or directory src into the sandbox's directory as
// name, readable by the sandbox's user, and returns the copy's path.
func (sb *sandbox) copyIn(t *testing.T, src, name string) string {
	t.Helper()
	dst := filepath.Join(sb.dir, name)
	if out, err := exec.Command("cp", "-R", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s into the sandbox: %v\n%s", src, err, out)
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", dst).CombinedOutput(); err != nil {
		t.Fatalf("chmod %s: %v\n%s", dst, err, out)
	}
	return dst
}

// own gives path to the sandbox's user.
func (sb *sandbox) own(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, sandboxUID, sandboxUID); err != nil {
		t.Fatal(err)
	}
}

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestHelmChart lints and renders the chart with its defaults and with
// every option on, and validates the rendered manifests against the
// Kubernetes API's schema offline (deploy/tools/k8scheck).
//
// It builds helm and a Kubernetes client library, so it runs under make
// deploy-check (OMNI_DEPLOY_CHECK) only, not in make test.
func TestHelmChart(t *testing.T) {
	if os.Getenv("OMNI_DEPLOY_CHECK") == "" {
		t.Skip("the Helm chart is checked by make deploy-check")
	}
	helm := tool(t, "helm", "go install helm.sh/helm/v4/cmd/helm@v4.3.2")
	run(t, helm, "lint", "--strict", "helm/omni-hub")
	check := filepath.Join(t.TempDir(), "k8scheck")
	build := exec.Command("go", "build", "-o", check, ".")
	build.Dir = "tools/k8scheck"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build k8scheck: %v\n%s", err, out)
	}
	for _, set := range [][]string{nil, {"--set", "ingress.enabled=true,ingress.tlsSecret=hq-tls,serviceMonitor.enabled=true,hub.extraEnv.OMNI_BATCH=20000"}} {
		out := run(t, helm, append([]string{"template", "omnisync", "helm/omni-hub"}, set...)...)
		cmd := exec.Command(check)
		cmd.Stdin = strings.NewReader(out)
		res, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("k8scheck %v: %v\n%s", set, err, res)
		}
		t.Logf("helm template %v: %s", set, lastLine(string(res)))
		env := regexp.MustCompile(`name: (OMNI_[A-Z_]+)`).FindAllStringSubmatch(out, -1)
		hubEnv := settings(t, testkit.BuildBinary(t, "github.com/omnisync/omnisync/cloud/cmd/omni-hub"))
		for _, m := range env {
			if !hubEnv[m[1]] {
				t.Errorf("the chart sets %s, which is not a setting of omni-hub", m[1])
			}
		}
	}
	if out, err := exec.Command(helm, "template", "x", "helm/omni-hub", "--set", "publicURL=").CombinedOutput(); err == nil {
		t.Errorf("the chart rendered without a public URL:\n%s", out)
	}
}

func lastLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var last string
	for sc.Scan() {
		if sc.Text() != "" {
			last = sc.Text()
		}
	}
	return last
}

// TestDockerfile checks the hub's image recipe without a Docker engine
// (this machine has none): a build stage and a final stage, a non-root
// numeric user in the final one, and (under make deploy-check) that the
// build's own go build command, run here with the Dockerfile's settings,
// makes static binaries (no program interpreter, no dynamic section) of
// what the final stage copies.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(b), " ")
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)); n < 2 {
		t.Errorf("%d FROM lines; want a build stage and a runtime stage", n)
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("the final stage runs as %v; want a non-root numeric user", users)
	}
	build := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 .*go build .*)$`).FindStringSubmatch(df)
	if build == nil {
		t.Fatal("no RUN CGO_ENABLED=0 ... go build line")
	}
	if os.Getenv("OMNI_DEPLOY_CHECK") == "" {
		t.Log("the image's build command is run by make deploy-check")
		return
	}
	out := t.TempDir()
	script := strings.NewReplacer("/out/", out+"/", "$VERSION", "test", "$TARGETOS", "linux", "$TARGETARCH", goEnv(t, "GOARCH")).Replace(build[1])
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = ".."
	if res, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, res)
	}
	copied := regexp.MustCompile(`(?m)^COPY --from=build ((?:/out/\S+ )+)/usr/local/bin/`).FindStringSubmatch(df)
	if copied == nil {
		t.Fatal("the final stage copies no binaries to /usr/local/bin")
	}
	for _, src := range strings.Fields(copied[1]) {
		path := filepath.Join(out, strings.TrimPrefix(src, "/out/"))
		f, err := elf.Open(path)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked", src)
			}
		}
		f.Close()
	}
}

// TestDebPackages builds the Debian packages (package/build-deb.sh) from
// binaries built as the Makefile builds them and checks them as dpkg
// would see them: their fields, their files, the unit's ExecStart naming
// the packaged binary (and systemd-analyze verify on the unit as
// installed), the packaged binaries running, the maintainer scripts
// parsing, and the service's user created by the packaged sysusers file
// (systemd-sysusers in a scratch root). Slow (compression): make
// deploy-check.
func TestDebPackages(t *testing.T) {
	if os.Getenv("OMNI_DEPLOY_CHECK") == "" {
		t.Skip("the packages are built and checked by make deploy-check")
	}
	dpkg := tool(t, "dpkg-deb", "Debian package dpkg")
	analyze := tool(t, "systemd-analyze", "Debian package systemd")
	sysusers := tool(t, "systemd-sysusers", "Debian package systemd")
	bin, out := t.TempDir(), t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=v1.2.3", "-o", bin+"/",
		"./cloud/cmd/omni-hub", "./cloud/cmd/omnictl", "./cloud/cmd/omni-nats", "./edge/cmd/omni-edge")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if res, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, res)
	}
	arch := goEnv(t, "GOARCH")
	debs := strings.Fields(run(t, "package/build-deb.sh", out, "v1.2.3", arch, bin))
	if len(debs) != 2 {
		t.Fatalf("built %v; want omnisync-edge and omnisync-hub", debs)
	}
	for _, c := range []struct {
		deb, pkg, unit string
		binaries       []string
		files          []string
		user           string
	}{
		{debs[0], "omnisync-edge", "omni-edge.service", []string{"omni-edge"},
			[]string{"usr/lib/modules-load.d/omnisync-serial.conf", "usr/share/omnisync/firmware-configs/SCHEMA.md", "usr/share/doc/omnisync-edge/agent.yaml.example"}, "omni-edge"},
		{debs[1], "omnisync-hub", "omni-hub.service", []string{"omni-hub", "omnictl", "omni-nats"},
			[]string{"usr/share/omnisync/prometheus/alerts.yml", "usr/share/omnisync/grafana/fleet.json", "usr/share/doc/omnisync-hub/hub.yaml.example"}, "omni-hub"},
	} {
		fields := run(t, dpkg, "--field", c.deb, "Package", "Version", "Architecture")
		for _, want := range []string{"Package: " + c.pkg, "Version: 1.2.3", "Architecture: " + arch} {
			if !strings.Contains(fields, want) {
				t.Errorf("%s: no %q in\n%s", c.deb, want, fields)
			}
		}
		root := t.TempDir()
		run(t, dpkg, "-x", c.deb, root)
		control := t.TempDir()
		run(t, dpkg, "-e", c.deb, control)
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			run(t, "sh", "-n", filepath.Join(control, s))
		}
		for _, f := range append(c.files, "usr/lib/systemd/system/"+c.unit, "usr/lib/sysusers.d/"+c.pkg+".conf") {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("%s: %v", c.pkg, err)
			}
		}
		for _, b := range c.binaries {
			if v := run(t, filepath.Join(root, "usr/bin", b), "--version"); !strings.Contains(v, "v1.2.3") {
				t.Errorf("%s --version: %s", b, v)
			}
		}
		unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system", c.unit))
		start := regexp.MustCompile(`(?m)^ExecStart=(\S+)`).FindSubmatch(unit)
		if start == nil {
			t.Fatalf("%s: no ExecStart", c.unit)
		}
		packaged := filepath.Join(root, string(start[1]))
		if _, err := os.Stat(packaged); err != nil {
			t.Errorf("%s starts %s, which the package does not hold", c.unit, start[1])
		}
		installed := filepath.Join(t.TempDir(), c.unit)
		if err := os.WriteFile(installed, []byte(strings.Replace(string(unit), "ExecStart="+string(start[1]), "ExecStart="+packaged, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if res, err := osexec(analyze, "verify", installed); err != nil || strings.TrimSpace(res) != "" {
			t.Errorf("systemd-analyze verify %s as packaged: %v\n%s", c.unit, err, res)
		}
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, sysusers, "--root="+root, filepath.Join(root, "usr/lib/sysusers.d", c.pkg+".conf"))
		passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
		if !regexp.MustCompile(`(?m)^` + c.user + `:x:\d+:\d+:.*:/var/lib/` + c.user + `:`).Match(passwd) {
			t.Errorf("%s: the sysusers file makes no user %s with home /var/lib/%s:\n%s", c.pkg, c.user, c.user, passwd)
		}
		if c.user == "omni-edge" {
			group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
			if !regexp.MustCompile(`(?m)^dialout:x:\d+:omni-edge$`).Match(group) {
				t.Errorf("omni-edge is not in dialout:\n%s", group)
			}
		}
		fi, _ := os.Stat(c.deb)
		t.Logf("%s: %.1f MB", filepath.Base(c.deb), float64(fi.Size())/1e6)
	}
}
