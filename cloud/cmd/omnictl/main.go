// Command omnictl is the operator's CLI for the omnisync hub: it reads store
// sync health, inventory, conflicts and dead letters from the hub's API,
// checks and imports catalog files, manages HQ users and API tokens,
// drives agents with recorded load (loadgen) to check the hub's books
// against an oracle (loadgen verify), and fits customer lifetime value
// models to a file (clv fit, locally). Every request to the hub carries an
// API token: --token, OMNI_TOKEN, or the one `omnictl login` saved.
//
// Exit status: 0 done, 1 refused or failed, 2 usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

var version = "dev"

func main() {
	err := rootCmd(os.Stdin, os.Stdout, os.Stderr).Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, "omnictl:", err)
	}
	os.Exit(exitCode(err))
}

// rootCmd builds omnictl with its commands reading stdin and writing
// stdout and stderr.
func rootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	hub := newHubConn()
	root := &cobra.Command{
		Use:           "omnictl",
		Short:         "omnisync operator CLI",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&hub.url, "hub", envOr("OMNI_HUB", "http://127.0.0.1:8080"), "hub base URL (env OMNI_HUB)")
	root.PersistentFlags().StringVar(&hub.token, "token", "", "API token to send (env OMNI_TOKEN; default: the one 'omnictl login' saved for --hub)")
	root.SetFlagErrorFunc(flagUsageError)
	get := hub.get

	stores := &cobra.Command{
		Use:   "stores",
		Short: "sync health of every store and device; stores provision adds a store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Stores []struct {
					Store   string
					Devices []struct {
						Device        string
						Connected     bool
						Watermark     uint64
						EventsApplied int64 `json:"events_applied"`
						Backlog       int64
						LagSeconds    float64   `json:"lag_seconds"`
						SkewSeconds   float64   `json:"clock_skew_seconds"`
						UnsyncedSales int64     `json:"unsynced_sales"`
						UnsyncedValue int64     `json:"unsynced_value"`
						LastHeartbeat time.Time `json:"last_heartbeat"`
						Peripherals   []struct {
							Name, State string
						}
					}
				}
			}
			if err := get("/v1/stores", &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STORE\tDEVICE\tSTATE\tAPPLIED\tBACKLOG\tLAG\tSKEW\tUNSYNCED\tLAST HEARTBEAT\tPERIPHERALS")
			for _, s := range r.Stores {
				for _, d := range s.Devices {
					state := "offline"
					if d.Connected {
						state = "connected"
					}
					unsynced := "-"
					if d.UnsyncedSales > 0 {
						unsynced = fmt.Sprintf("%d (%d.%02d)", d.UnsyncedSales, d.UnsyncedValue/100, d.UnsyncedValue%100)
					}
					periph := make([]string, len(d.Peripherals))
					for i, p := range d.Peripherals {
						periph[i] = p.Name + ":" + p.State
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0fs\t%+.1fs\t%s\t%s\t%s\n", s.Store, d.Device, state, d.EventsApplied, d.Backlog, d.LagSeconds,
						d.SkewSeconds, unsynced, d.LastHeartbeat.Local().Format(time.DateTime), strings.Join(periph, " "))
				}
			}
			return tw.Flush()
		},
	}
	stores.AddCommand(provisionCmd(stdout))
	root.AddCommand(stores)
	root.AddCommand(&cobra.Command{
		Use:   "inventory SKU",
		Short: "stock of one SKU at every location",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r struct {
				SKU       string
				Locations []struct {
					Location  string
					OnHand    int64 `json:"on_hand"`
					Reserved  int64
					Available int64
					AsOf      time.Time `json:"as_of"`
				}
				Total struct {
					OnHand    int64 `json:"on_hand"`
					Reserved  int64
					Available int64
				}
			}
			if err := get("/v1/inventory/"+url.PathEscape(args[0]), &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LOCATION\tON HAND\tRESERVED\tAVAILABLE\tAS OF")
			for _, l := range r.Locations {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", l.Location, l.OnHand, l.Reserved, l.Available, l.AsOf.Local().Format(time.DateTime))
			}
			fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%d\t\n", r.Total.OnHand, r.Total.Reserved, r.Total.Available)
			return tw.Flush()
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "safety-stock SKU LOCATION QTY",
		Short: "set the safety stock of a position: units kept out of available stock, never promised online",
		Args:  usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			qty, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil || qty < 0 {
				return usageError{fmt.Errorf("QTY must be a whole number >= 0, not %q", args[2])}
			}
			var r struct {
				Locations []struct {
					Location  string `json:"location"`
					OnHand    int64  `json:"on_hand"`
					Reserved  int64  `json:"reserved"`
					Safety    int64  `json:"safety_stock"`
					Available int64  `json:"available"`
				} `json:"locations"`
			}
			body := map[string]any{"location": args[1], "safety_stock": qty}
			if err := hub.do(cmd.Context(), http.MethodPut, "/v1/inventory/"+url.PathEscape(args[0])+"/safety", body, &r); err != nil {
				return err
			}
			for _, l := range r.Locations {
				if l.Location == args[1] {
					fmt.Fprintf(stdout, "%s at %s: safety stock %d, on hand %d, reserved %d, available %d\n", args[0], l.Location, l.Safety, l.OnHand, l.Reserved, l.Available)
				}
			}
			return nil
		},
	})
	root.AddCommand(conflictsCmd(hub, stdout), transfersCmd(hub, stdout))
	deadLetters := &cobra.Command{
		Use:   "deadletters",
		Short: "events the hub kept aside instead of applying, with reasons",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				DeadLetters []struct {
					ID     int64
					Store  string
					Device string
					Seq    uint64
					Reason string
					At     time.Time
				} `json:"dead_letters"`
			}
			if err := get("/v1/deadletters", &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAT\tSTORE\tDEVICE\tSEQ\tREASON")
			for _, d := range r.DeadLetters {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.At.Local().Format(time.DateTime), d.Store, d.Device, d.Seq, d.Reason)
			}
			return tw.Flush()
		},
	}
	deadLetters.AddCommand(deadLetterReplayCmd(hub, stdout))
	root.AddCommand(deadLetters, exceptionsCmd(hub, stdout), pickupsCmd(hub, stdout))
	root.AddCommand(catalogCmd(hub, stdout, stderr))
	root.AddCommand(clvCmd(stdin, stdout, stderr))
	root.AddCommand(loadgenCmd(stdout, hub))
	root.AddCommand(customersCmd(hub, stdout))
	root.AddCommand(loginCmd(hub, stdin, stdout, stderr), logoutCmd(hub, stdout), whoamiCmd(hub, stdout),
		usersCmd(hub, stdin, stdout, stderr), tokensCmd(hub, stdout, stderr))
	return root
}

// usageError is a mistake in how omnictl was called: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// flagUsageError makes a flag parsing failure a usage error.
func flagUsageError(_ *cobra.Command, err error) error { return usageError{err} }

// usageArgs makes an argument check's failure a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// exitCode maps an error from a command to the process's exit status.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"):
		return 2
	}
	return 1
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
