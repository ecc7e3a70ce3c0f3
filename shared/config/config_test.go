package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

type testConfig struct {
	Config  string        `mapstructure:"config"`
	NATSURL string        `mapstructure:"nats-url"`
	HTTP    string        `mapstructure:"http"`
	Budget  int64         `mapstructure:"budget"`
	Wait    time.Duration `mapstructure:"wait"`
}

func flags(args ...string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("config", "", "")
	fs.String("nats-url", "nats://default", "")
	fs.String("http", ":8080", "")
	fs.Int64("budget", 100, "")
	fs.Duration("wait", time.Second, "")
	if err := fs.Parse(args); err != nil {
		panic(err)
	}
	return fs
}

// Ensure that a flag beats the environment, which beats the file, which
// beats the default.
func TestLoad_Precedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("nats-url: nats://file\nhttp: :9000\nbudget: 7\nwait: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OMNI_HTTP", ":9100")
	t.Setenv("OMNI_BUDGET", "9")

	var c testConfig
	if err := Load(flags("--config", file, "--budget", "11"), &c); err != nil {
		t.Fatal(err)
	}
	if c.NATSURL != "nats://file" || c.HTTP != ":9100" || c.Budget != 11 || c.Wait != 3*time.Second {
		t.Fatalf("got %+v", c)
	}

	var d testConfig
	if err := Load(flags(), &d); err != nil {
		t.Fatal(err)
	}
	if d.NATSURL != "nats://default" || d.HTTP != ":9100" {
		t.Fatalf("defaults: got %+v", d)
	}
}

// Ensure that a misspelt key in the file is refused with its name.
func TestLoad_UnknownKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("nats-ulr: nats://typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c testConfig
	err := Load(flags("--config", file), &c)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "nats-ulr") || !strings.Contains(err.Error(), file) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoad_MissingFile(t *testing.T) {
	var c testConfig
	if err := Load(flags("--config", "/nonexistent/omni.yaml"), &c); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
}
