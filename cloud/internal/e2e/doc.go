// Package e2e holds the platform's end-to-end tests: real omni-edge
// processes, a real hub (in-process or as an omni-hub process), and a real
// NATS JetStream server, checked through the public HTTP APIs only.
//
// They live under cloud/ because Go's internal-package rule lets them start
// the hub in-process; agents are always separate processes built from
// edge/cmd/omni-edge, which is also what lets the tests SIGKILL them.
package e2e
