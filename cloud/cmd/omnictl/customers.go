package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// customersCmd is `omnictl customers`: find a customer by any identifier,
// show the 360, undo a merge, erase a person and follow the erasure. What
// it prints is personal data: it goes to stdout only, never to a log.
func customersCmd(hub *hubConn, stdout io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "customers", Short: "the single customer view: find, show, unmerge, erase"}
	c.AddCommand(&cobra.Command{
		Use:   "find TYPE:VALUE",
		Short: "the master id of the customer an identifier belongs to (email:a@b.example, loyalty:LC-1, phone:+44..., account:W-1, app:...)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.Contains(args[0], ":") {
				return usageError{errors.New("want TYPE:VALUE, e.g. email:a@b.example")}
			}
			var r struct{ Customer string }
			if err := hub.get("/v1/customers?identifier="+url.QueryEscape(args[0]), &r); err != nil {
				return err
			}
			fmt.Fprintln(stdout, r.Customer)
			return nil
		},
	})
	var asJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "the customer 360: identifiers with their evidence, merges, profile, consent, purchases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := hub.get("/v1/customers/"+url.PathEscape(args[0]), &raw); err != nil {
				return err
			}
			if asJSON {
				_, err := fmt.Fprintln(stdout, string(raw))
				return err
			}
			return printCustomer(stdout, raw)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print the hub's JSON")
	c.AddCommand(show)
	var obs, reason string
	unmerge := &cobra.Command{
		Use:   "unmerge ID",
		Short: "undo a merge of the customer (--observation from `show`; default the newest): both sides come back exactly",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r struct{ Customers []string }
			body := map[string]string{"observation": obs, "reason": reason}
			if err := hub.do(context.Background(), http.MethodPost, "/v1/customers/"+url.PathEscape(args[0])+"/unmerge", body, &r); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "customers now:", strings.Join(r.Customers, " "))
			return nil
		},
	}
	unmerge.Flags().StringVar(&obs, "observation", "", "the merge to undo (an event id from `customers show`)")
	unmerge.Flags().StringVar(&reason, "reason", "", "why (kept with the unmerge)")
	c.AddCommand(unmerge)
	var eraseReason string
	var yes bool
	erase := &cobra.Command{
		Use:   "erase ID --yes",
		Short: "erase the person everywhere (cannot be undone); prints the erasure id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usageError{errors.New("erasing cannot be undone: add --yes")}
			}
			var r struct{ Erasure string }
			if err := hub.do(context.Background(), http.MethodPost, "/v1/customers/"+url.PathEscape(args[0])+"/erase", map[string]string{"reason": eraseReason}, &r); err != nil {
				return err
			}
			fmt.Fprintln(stdout, r.Erasure)
			return nil
		},
	}
	erase.Flags().StringVar(&eraseReason, "reason", "", "why (kept with the erasure)")
	erase.Flags().BoolVar(&yes, "yes", false, "confirm")
	c.AddCommand(erase)
	c.AddCommand(&cobra.Command{
		Use:   "erasure ID",
		Short: "an erasure's state at every store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r struct {
				ID, Customer, Operator string
				Done                   bool
				RequestedAt            time.Time `json:"requested_at"`
				Stores                 []struct {
					Store, State string
					Since, At    time.Time
				}
				Stream struct {
					State            string
					Deleted, Pending int
				}
			}
			if err := hub.get("/v1/erasures/"+url.PathEscape(args[0]), &r); err != nil {
				return err
			}
			state := "waiting for stores"
			if r.Done {
				state = "done everywhere"
			}
			fmt.Fprintf(stdout, "erasure %s of %s by %s at %s: %s\n", r.ID, r.Customer, r.Operator, r.RequestedAt.Local().Format(time.DateTime), state)
			fmt.Fprintf(stdout, "events stream: %s (%d messages deleted, %d to delete)\n", r.Stream.State, r.Stream.Deleted, r.Stream.Pending)
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STORE\tSTATE\tSINCE/AT")
			for _, s := range r.Stores {
				at := s.At
				if s.State != "done" {
					at = s.Since
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Store, s.State, at.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	})
	return c
}

// printCustomer renders a 360 for people.
func printCustomer(w io.Writer, raw json.RawMessage) error {
	var v struct {
		ID          string
		Requested   string
		Identifiers []struct {
			Type, Value, Via string
			At               time.Time
			Evidence         struct{ Store, Device, Rule, Operator string }
		}
		Merges []struct {
			Observation string
			At          time.Time
			Joined      []string
			Evidence    struct{ Store, Device, Rule string }
		}
		Profile map[string]string
		Flags   []struct {
			Purpose, Reason string
			Allowed         bool
		} `json:"consent_now"`
		Purchases []struct {
			Kind, Location string
			OrderID        string `json:"order_id"`
			At             time.Time
			Items, Amount  int64
		}
		Stores []string
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	fmt.Fprintf(w, "customer %s", v.ID)
	if v.Requested != "" {
		fmt.Fprintf(w, " (%s was merged into it)", v.Requested)
	}
	fmt.Fprintf(w, "\nidentified at: %s\n\n", strings.Join(v.Stores, " "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tVALUE\tLINKED BY\tAT")
	for _, i := range v.Identifiers {
		by := i.Evidence.Rule
		if i.Evidence.Store != "" {
			by += " at " + i.Evidence.Store + "/" + i.Evidence.Device
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Type, i.Value, by, i.At.Local().Format(time.DateTime))
	}
	tw.Flush()
	if len(v.Merges) > 0 {
		fmt.Fprintln(w, "\nmerges (omnictl customers unmerge ID --observation OBS):")
		for _, m := range v.Merges {
			fmt.Fprintf(w, "  %s  %s at %s/%s  joined %s\n", m.Observation, m.Evidence.Rule, m.Evidence.Store, m.Evidence.Device, strings.Join(m.Joined, " "))
		}
	}
	if len(v.Profile) > 0 {
		fmt.Fprintln(w, "\nprofile:")
		for k, val := range v.Profile {
			fmt.Fprintf(w, "  %s: %s\n", k, val)
		}
	}
	fmt.Fprintln(w, "\nconsent now:")
	for _, f := range v.Flags {
		fmt.Fprintf(w, "  %s: %v (%s)\n", f.Purpose, f.Allowed, f.Reason)
	}
	fmt.Fprintf(w, "\npurchases: %d\n", len(v.Purchases))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range v.Purchases {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d items\t%d.%02d\n", p.At.Local().Format(time.DateTime), p.Kind, p.Location, p.Items, p.Amount/100, p.Amount%100)
	}
	return tw.Flush()
}
