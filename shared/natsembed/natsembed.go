// Package natsembed runs a NATS server with JetStream inside the current
// process: the hub's one-command default and the tests' real broker.
//
// Guarantee: Start returns only once the server accepts connections, and the
// server's JetStream data lives in StoreDir, so a server restarted on the
// same directory finds its streams and consumers again. Sharp edge: a single
// server acknowledges publishes before it fsyncs them (sync interval), which
// is why the platform also acknowledges end to end (see DESIGN.md).
//
// With an AccountsFile the server admits only the users that file names
// (see shared/natsacct), and reloads it when it or a file it watches
// changes, so a store minted while the hub runs is let in within seconds.
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
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
	// AccountsFile is a NATS configuration file holding the accounts and
	// users (and nothing else: listen address and storage come from these
	// options). Empty: every client is admitted to one account.
	AccountsFile string
	// Watch lists files (such as the one AccountsFile includes) whose
	// change reloads AccountsFile; they are checked every WatchEvery
	// (default 2s).
	Watch      []string
	WatchEvery time.Duration
	Logger     *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	*server.Server
	o    Options
	stop chan struct{}
	done chan struct{}
	once sync.Once
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
	opts, err := o.options(host, port)
	if err != nil {
		return nil, err
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
	srv := &Server{Server: s, o: o, stop: make(chan struct{}), done: make(chan struct{})}
	if o.AccountsFile != "" {
		go srv.watch()
	} else {
		close(srv.done)
	}
	return srv, nil
}

// options builds the server's options: the accounts file's, then ours.
func (o Options) options(host string, port int) (*server.Options, error) {
	opts := &server.Options{}
	if o.AccountsFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(o.AccountsFile); err != nil {
			return nil, fmt.Errorf("natsembed: %w", err)
		}
	}
	opts.ServerName = o.ServerName
	if opts.ServerName == "" {
		opts.ServerName = "omni-hub"
	}
	opts.Host, opts.Port = host, port
	opts.JetStream = true
	opts.StoreDir = o.StoreDir
	opts.JetStreamMaxMemory, opts.JetStreamMaxStore = o.MaxMemory, o.MaxStore
	opts.NoSigs = true
	opts.MaxPayload = 1 << 20
	opts.SyncAlways = o.SyncAlways
	return opts, nil
}

// Reload reads the accounts file again and applies it: new users and
// accounts are admitted, removed ones disconnected.
//
// It reloads twice: nats-server (2.15) creates an account that first
// appears in a reload without the subscriptions its service imports need
// (a store's events and heartbeats would find no responders), and sets
// them up when a later reload finds the account already there.
func (s *Server) Reload() error {
	if s.o.AccountsFile == "" {
		return nil
	}
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok {
		return errors.New("natsembed: server not listening")
	}
	for range 2 {
		opts, err := s.o.options(addr.IP.String(), addr.Port)
		if err != nil {
			return err
		}
		if err := s.ReloadOptions(opts); err != nil {
			return fmt.Errorf("natsembed: reload: %w", err)
		}
	}
	return nil
}

// watch reloads the accounts file when it or a watched file changes.
func (s *Server) watch() {
	defer close(s.done)
	every := s.o.WatchEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	files := append([]string{s.o.AccountsFile}, s.o.Watch...)
	stamp := func() string {
		var b []byte
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				b = fmt.Appendf(b, "%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
			}
		}
		return string(b)
	}
	last := stamp()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		now := stamp()
		if now == last {
			continue
		}
		last = now
		if err := s.Reload(); err != nil {
			if s.o.Logger != nil {
				s.o.Logger.Error("NATS accounts not reloaded; the server keeps the previous ones", "file", s.o.AccountsFile, "err", err)
			}
			continue
		}
		if s.o.Logger != nil {
			s.o.Logger.Info("NATS accounts reloaded", "file", s.o.AccountsFile)
		}
	}
}

// Close shuts the server down and waits for it to finish.
func (s *Server) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
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
