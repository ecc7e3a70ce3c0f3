package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/cloud/internal/clv"
)

// clvCmd groups the customer lifetime value commands. They run here, on
// the operator's machine: nothing is sent to the hub.
func clvCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "clv", Short: "customer lifetime value models, fitted locally"}
	c.AddCommand(clvFitCmd(stdin, stdout, stderr))
	return c
}

// clvFitOutput is what `omnictl clv fit` prints.
type clvFitOutput struct {
	R                         float64 `json:"r"`
	Alpha                     float64 `json:"alpha"`
	A                         float64 `json:"a"`
	B                         float64 `json:"b"`
	P                         float64 `json:"p"`
	Q                         float64 `json:"q"`
	Gamma                     float64 `json:"gamma"`
	BGNBDLogLikelihood        float64 `json:"bgnbd_log_likelihood"`
	GammaGammaLogLikelihood   float64 `json:"gamma_gamma_log_likelihood"`
	Customers                 int     `json:"customers"`
	RepeatCustomers           int     `json:"repeat_customers"`
	FrequencySpendCorrelation float64 `json:"frequency_spend_correlation"`
}

// clvFitCmd fits BG/NBD and Gamma-Gamma to a customer summary file.
func clvFitCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var workers int
	cmd := &cobra.Command{
		Use:   "fit FILE",
		Short: "fit BG/NBD (purchases) and Gamma-Gamma (spend) to a customer CSV and print the parameters as JSON",
		Long: `Reads a CSV file (- for standard input) with a header row and one row a
customer: x (repeat purchases), t_x (time of the last repeat purchase since
the first), T (time since the first purchase) and the average spend of the
repeat purchases (average_spend, avg_spend, zbar or monetary_value). Names
match whatever their case; other columns are ignored; times may be in any
unit, the same for both. Every bad row is listed on standard error as
FILE:LINE: column: reason, and then nothing is fitted.

Prints the BG/NBD parameters r, alpha, a, b and the Gamma-Gamma parameters
p, q, gamma with both log-likelihoods as JSON. Runs locally; nothing is
sent to the hub.

Exit status: 0 fitted, 1 bad file or no fit, 2 usage error.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var in io.Reader = stdin
			if name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			customers, err := clv.ReadCSV(in)
			var bad *clv.CSVError
			if errors.As(err, &bad) {
				for _, r := range bad.Rows {
					if r.Column != "" {
						fmt.Fprintf(stderr, "%s:%d: %s: %s\n", name, r.Line, r.Column, r.Reason)
					} else {
						fmt.Fprintf(stderr, "%s:%d: %s\n", name, r.Line, r.Reason)
					}
				}
				if bad.Dropped > 0 {
					fmt.Fprintf(stderr, "... and %d more bad rows\n", bad.Dropped)
				}
				return fmt.Errorf("%s: %d bad rows, nothing fitted", name, len(bad.Rows)+bad.Dropped)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			fit, err := clv.FitModel(ctx, customers, clv.WithWorkers(workers))
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			p, s := fit.Purchases, fit.Spend
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(clvFitOutput{
				R: p.R, Alpha: p.Alpha, A: p.A, B: p.B,
				P: s.P, Q: s.Q, Gamma: s.Gamma,
				BGNBDLogLikelihood: p.LogLikelihood, GammaGammaLogLikelihood: s.LogLikelihood,
				Customers: p.Customers, RepeatCustomers: s.Customers,
				FrequencySpendCorrelation: s.FrequencySpendCorrelation,
			})
		},
	}
	cmd.Flags().IntVar(&workers, "workers", runtime.GOMAXPROCS(0), "goroutines evaluating the likelihood (the result is the same for any number)")
	return cmd
}
