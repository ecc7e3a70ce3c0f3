package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/cloud/internal/api"
)

// exceptionView is an exception as the hub answers it.
type exceptionView = api.ExceptionView

type replayView struct {
	Replayed, Held, Skipped int
}

func (r replayView) String() string {
	s := fmt.Sprintf("replayed %d", r.Replayed)
	if r.Held > 0 {
		s += fmt.Sprintf(", %d still held", r.Held)
	}
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d already replayed", r.Skipped)
	}
	return s
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError{fmt.Errorf("id %q: want a positive number", s)}
	}
	return id, nil
}

// postID posts body to prefix/ID/action (ID checked) and decodes the
// answer into out.
func postID(hub *hubConn, prefix, rawID, action string, body, out any) (int64, error) {
	id, err := parseID(rawID)
	if err != nil {
		return 0, err
	}
	return id, hub.do(context.Background(), http.MethodPost, prefix+strconv.FormatInt(id, 10)+action, body, out)
}

// exceptionsCmd is `omnictl exceptions`: the events the hub holds because
// they name an unknown SKU, GTIN or location; map one and replay, replay,
// or discard.
func exceptionsCmd(hub *hubConn, stdout io.Writer) *cobra.Command {
	var state, store string
	c := &cobra.Command{
		Use:   "exceptions",
		Short: "events held for naming an unknown SKU, GTIN or location: list, map, replay, discard",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			if store != "" {
				q.Set("store", store)
			}
			var r struct {
				Exceptions []exceptionView `json:"exceptions"`
			}
			if err := hub.get("/v1/exceptions?"+q.Encode(), &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tREASON\tVALUE\tSTORE\tEVENTS\tHELD\tFIRST SEEN\tLAST SEEN\tSTATE")
			for _, x := range r.Exceptions {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", x.ID, x.Reason, x.Value, x.Store, x.Count, x.Held,
					x.FirstSeen.Local().Format(time.DateTime), x.LastSeen.Local().Format(time.DateTime), x.State)
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&state, "state", "", "open (default), resolved or discarded")
	c.Flags().StringVar(&store, "store", "", "one store's only")
	c.AddCommand(&cobra.Command{
		Use:   "map ID TO",
		Short: "the exception's unknown value is TO (a catalog SKU, or a store); its held events are replayed at once",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			var l struct {
				Exceptions []exceptionView `json:"exceptions"`
			}
			if err := hub.get("/v1/exceptions?limit=1000", &l); err != nil {
				return err
			}
			var x *exceptionView
			for i := range l.Exceptions {
				if l.Exceptions[i].ID == id {
					x = &l.Exceptions[i]
				}
			}
			if x == nil {
				return fmt.Errorf("no open exception %d", id)
			}
			var r struct {
				Replay replayView `json:"replay"`
			}
			body := map[string]any{"kind": x.MapKind, "from": x.Value, "to": args[1], "replay": id}
			if err := hub.do(context.Background(), http.MethodPost, "/v1/exceptions/mappings", body, &r); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s is %s; %s\n", x.MapKind, x.Value, args[1], r.Replay)
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "replay ID",
		Short: "replay the exception's held events with the mappings as they are now (each applies once)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r struct {
				Replay replayView `json:"replay"`
			}
			if _, err := postID(hub, "/v1/exceptions/", args[0], "/replay", nil, &r); err != nil {
				return err
			}
			fmt.Fprintln(stdout, r.Replay)
			return nil
		},
	})
	var reason string
	discard := &cobra.Command{
		Use:   "discard ID --reason TEXT",
		Short: "give up on the exception's held events: they are never applied",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageError{errors.New("--reason is required")}
			}
			id, err := postID(hub, "/v1/exceptions/", args[0], "/discard", map[string]string{"reason": reason}, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "exception %d discarded\n", id)
			return nil
		},
	}
	discard.Flags().StringVar(&reason, "reason", "", "why (kept with the exception)")
	c.AddCommand(discard)
	c.AddCommand(&cobra.Command{
		Use:   "mappings",
		Short: "HQ's mappings: what unknown SKUs and stores are taken as",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Mappings []struct {
					Kind, From, To, By string
					At                 time.Time
				} `json:"mappings"`
			}
			if err := hub.get("/v1/exceptions/mappings", &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tFROM\tTO\tBY\tAT")
			for _, m := range r.Mappings {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Kind, m.From, m.To, m.By, m.At.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	})
	return c
}

// deadLetterReplayCmd is `omnictl deadletters replay ID`.
func deadLetterReplayCmd(hub *hubConn, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "replay ID",
		Short: "run a dead letter through apply again after a fix: it applies once, or stays with the new reason",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r struct {
				DeadLetter struct {
					Replayed bool   `json:"replayed"`
					Reason   string `json:"reason"`
				} `json:"dead_letter"`
			}
			id, err := postID(hub, "/v1/deadletters/", args[0], "/replay", nil, &r)
			if err != nil {
				return err
			}
			if !r.DeadLetter.Replayed {
				return fmt.Errorf("dead letter %d still fails: %s", id, r.DeadLetter.Reason)
			}
			fmt.Fprintf(stdout, "dead letter %d replayed\n", id)
			return nil
		},
	}
}

// pickupsCmd is `omnictl pickups`: the click-and-collect board.
func pickupsCmd(hub *hubConn, stdout io.Writer) *cobra.Command {
	var store, state string
	c := &cobra.Command{
		Use:   "pickups",
		Short: "click-and-collect reservations by store and state (reserved, overdue, collected, released)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if store != "" {
				q.Set("store", store)
			}
			if state != "" {
				q.Set("state", state)
			}
			var r struct {
				Pickups []struct {
					ReservationID string    `json:"reservation_id"`
					Store         string    `json:"store"`
					State         string    `json:"state"`
					Lines         int64     `json:"lines"`
					Units         int64     `json:"units"`
					ReservedAt    time.Time `json:"reserved_at"`
				} `json:"pickups"`
			}
			if err := hub.get("/v1/pickups?"+q.Encode(), &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ORDER\tSTORE\tSTATE\tLINES\tUNITS\tRESERVED")
			for _, p := range r.Pickups {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", p.ReservationID, p.Store, p.State, p.Lines, p.Units, p.ReservedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&store, "store", "", "one store's only")
	c.Flags().StringVar(&state, "state", "", "reserved, overdue, collected or released")
	return c
}
