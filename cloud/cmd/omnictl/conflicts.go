package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type conflictRow struct {
	Type         string     `json:"type"`
	ID           int64      `json:"id"`
	SKU          string     `json:"sku"`
	Location     string     `json:"location"`
	Available    int64      `json:"available"`
	Version      int64      `json:"version"`
	CartID       string     `json:"cart_id"`
	Checkouts    int        `json:"checkouts"`
	Reservations []string   `json:"reservations"`
	OpenedAt     time.Time  `json:"opened_at"`
	ResolvedAt   *time.Time `json:"resolved_at"`
	ResolvedBy   string     `json:"resolved_by"`
	Action       *struct {
		Action string `json:"action"`
		Actor  string `json:"actor"`
	} `json:"action"`
	Proposals []struct {
		Label string `json:"label"`
	} `json:"proposals"`
}

// conflictsCmd lists conflicts (oversells and carts checked out twice)
// and acts on them.
func conflictsCmd(hub *hubConn, stdout io.Writer) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "conflicts [--all]",
		Short: "conflicts to resolve: oversold positions (orders at risk, proposals) and carts checked out twice; act on them",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Conflicts []conflictRow `json:"conflicts"`
			}
			path := "/v1/conflicts"
			if all {
				path += "?all=1"
			}
			if err := hub.get(path, &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tWHAT\tAVAILABLE\tVERSION\tSTATE\tORDERS\tPROPOSALS")
			for _, c := range r.Conflicts {
				state := "open"
				if c.ResolvedAt != nil {
					state = "resolved by " + c.ResolvedBy
					if c.Action != nil {
						state += " (" + c.Action.Action + ", " + c.Action.Actor + ")"
					}
				}
				var props []string
				for _, p := range c.Proposals {
					props = append(props, p.Label)
				}
				id, what := strconv.FormatInt(c.ID, 10), c.SKU+" at "+c.Location
				if c.Type == "cart_checkout" {
					id, what = "cart", fmt.Sprintf("cart %s (%d checkouts)", c.CartID, c.Checkouts)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", id, c.Type, what, c.Available, c.Version, state,
					strings.Join(c.Reservations, " "), strings.Join(props, "; "))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&all, "all", false, "resolved conflicts too")

	var from, order, to, actionID string
	var qty, version int64
	act := &cobra.Command{
		Use:   "act ID transfer|resource|cancel --version N [--from LOC --qty N] [--order ID --to LOC]",
		Short: "act on an oversell: source stock from another store as a transfer, move an order to another location, or cancel it",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := strconv.ParseInt(args[0], 10, 64); err != nil {
				return usageError{fmt.Errorf("ID must be a conflict id, not %q", args[0])}
			}
			if actionID == "" {
				var b [12]byte
				_, _ = rand.Read(b[:])
				actionID = "cli-" + hex.EncodeToString(b[:])
			}
			body := map[string]any{"action_id": actionID, "version": version, "action": args[1], "from": from, "qty": qty, "reservation_id": order, "to": to}
			var r struct {
				Action   string   `json:"action"`
				Actor    string   `json:"actor"`
				Repeated bool     `json:"repeated"`
				EventIDs []string `json:"event_ids"`
			}
			if err := hub.do(cmd.Context(), http.MethodPost, "/v1/conflicts/"+args[0]+"/actions", body, &r); err != nil {
				return err
			}
			if r.Repeated {
				fmt.Fprintf(stdout, "action %s was taken already (%s by %s)\n", actionID, r.Action, r.Actor)
				return nil
			}
			fmt.Fprintf(stdout, "conflict %s: %s done (action %s, events %s)\n", args[0], r.Action, actionID, strings.Join(r.EventIDs, " "))
			return nil
		},
	}
	act.Flags().Int64Var(&version, "version", 0, "the conflict version you decided on (omnictl conflicts shows it)")
	act.Flags().StringVar(&from, "from", "", "transfer: the location to send from")
	act.Flags().Int64Var(&qty, "qty", 0, "transfer: how many (default: the shortfall)")
	act.Flags().StringVar(&order, "order", "", "resource, cancel: the order (reservation id)")
	act.Flags().StringVar(&to, "to", "", "resource: the location the order moves to")
	act.Flags().StringVar(&actionID, "action-id", "", "idempotency key: repeating a command with the same id acts once (default: a new one)")
	c.AddCommand(act)
	c.AddCommand(&cobra.Command{
		Use:   "dismiss-cart CART",
		Short: "dismiss a cart's double checkout once it was dealt with",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := hub.do(cmd.Context(), http.MethodPost, "/v1/conflicts/carts/"+url.PathEscape(args[0])+"/dismiss", map[string]any{}, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "cart %s dismissed\n", args[0])
			return nil
		},
	})
	return c
}

// transfersCmd lists transfers between locations.
func transfersCmd(hub *hubConn, stdout io.Writer) *cobra.Command {
	var state string
	c := &cobra.Command{
		Use:   "transfers [--state in_transit|partial|overdue|received]",
		Short: "stock transfers between locations, paired by transfer id",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Transfers []struct {
					TransferID  string    `json:"transfer_id"`
					Source      string    `json:"source"`
					Destination string    `json:"destination"`
					State       string    `json:"state"`
					ShippedAt   time.Time `json:"shipped_at"`
					Lines       []struct {
						SKU       string `json:"sku"`
						Shipped   int64  `json:"shipped"`
						Received  int64  `json:"received"`
						InTransit int64  `json:"in_transit"`
					} `json:"lines"`
				} `json:"transfers"`
			}
			path := "/v1/transfers"
			if state != "" {
				path += "?state=" + url.QueryEscape(state)
			}
			if err := hub.get(path, &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TRANSFER\tFROM\tTO\tSTATE\tSHIPPED\tLINES (shipped/received)")
			for _, t := range r.Transfers {
				var lines []string
				for _, l := range t.Lines {
					lines = append(lines, fmt.Sprintf("%s %d/%d", l.SKU, l.Shipped, l.Received))
				}
				shipped := ""
				if !t.ShippedAt.IsZero() {
					shipped = t.ShippedAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.TransferID, t.Source, t.Destination, t.State, shipped, strings.Join(lines, ", "))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&state, "state", "", "only transfers in this state")
	return c
}
