// Package e2e holds the platform's end-to-end tests: real omni-edge
// processes, a real hub (in-process or as an omni-hub process), and a real
// NATS JetStream server, checked through the public HTTP APIs only.
//
// They live under cloud/ because Go's internal-package rule lets them start
// the hub in-process; agents are always separate processes built from
// edge/cmd/omni-edge, which is also what lets the tests SIGKILL them.
//
// Every test runs in parallel with the others (t.Parallel; go test runs
// as many at once as -parallel, GOMAXPROCS by default): each starts its
// own servers on ports of its own, and most of a test's time is waiting
// for processes, so two at a time finish the package in about half the
// time. A test must therefore never touch process-wide state (environment
// variables, working directory) and must tolerate a busy machine: poll with
// deadlines, never time things.
package e2e
