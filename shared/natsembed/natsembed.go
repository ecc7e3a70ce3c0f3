// Package natsembed runs a NATS server with JetStream inside the current
// process: the hub's one-command default and the tests' real broker.
//
// Guarantee: Start returns only once the server accepts connections, and the
// server's JetStream data lives in StoreDir, so a server restarted on the
// same directory finds its streams and consumers again. Sharp edge: a single
// server acknowledges publishes before it fsyncs them (sync interval), which
// is why the platform also acknowledges end to end (see DESIGN.md).
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNotReady is returned when the server does not accept connections in time.
var ErrNotReady = errors.New("natsembed: server not ready")

// Options configures an embedded server.
type Options struct {
	// Listen is host:port; port 0 picks a free one.
	Listen string
	// StoreDir holds JetStream data.
	StoreDir string
	// ServerName names the server (defaults to "omni-hub").
	ServerName string
	// MaxMemory and MaxStore bound JetStream; zero means the server's defaults.
	MaxMemory, MaxStore int64
	// SyncAlways makes JetStream fsync every write (slow; off by default
	// because the platform acknowledges end to end).
	SyncAlways bool
	Logger     *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	*server.Server
}

// Start starts the server and waits until it is ready.
func Start(o Options) (*Server, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsembed: listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("natsembed: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := o.ServerName
	if name == "" {
		name = "omni-hub"
	}
	opts := &server.Options{
		ServerName:         name,
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           o.StoreDir,
		JetStreamMaxMemory: o.MaxMemory,
		JetStreamMaxStore:  o.MaxStore,
		NoSigs:             true,
		MaxPayload:         1 << 20,
	}
	if o.SyncAlways {
		opts.SyncAlways = true
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(&slogAdapter{l: o.Logger}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, ErrNotReady
	}
	return &Server{Server: s}, nil
}

// Close shuts the server down and waits for it to finish.
func (s *Server) Close() {
	s.Shutdown()
	s.WaitForShutdown()
}

// slogAdapter forwards the server's log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any)  {}
