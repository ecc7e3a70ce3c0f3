package main

import (
	"io"
	"strings"
	"testing"
)

// Ensure that each kind of mistake the schema catches is an error, and a
// correct manifest or a custom resource is not.
func TestCheck(t *testing.T) {
	const svc = "apiVersion: v1\nkind: Service\nmetadata: {name: hub}\nspec:\n  selector: {app: hub}\n  ports: [{port: 8080, targetPort: http}]\n"
	tests := []struct {
		name, doc       string
		valid, skipped  int
		wantErrContains string
	}{
		{"valid service", svc, 1, 0, ""},
		{"two documents", svc + "---\n" + strings.Replace(svc, "name: hub", "name: hub-2", 1), 2, 0, ""},
		{"unknown field", strings.Replace(svc, "selector:", "selektor:", 1), 0, 0, "selektor"},
		{"wrong type", strings.Replace(svc, "port: 8080", "port: [8080]", 1), 0, 0, "port"},
		{"bad quantity", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n    resources: {limits: {memory: 1Gx}}\n", 0, 0, "quantities"},
		{"unknown field deep in a pod template", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - name: c\n        image: i\n        securityContext: {readOnlyRootFileSystem: true}\n", 0, 0, "readOnlyRootFileSystem"},
		{"custom resource", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\nspec: {}\n", 0, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			valid, skipped, err := check(strings.NewReader(tt.doc), io.Discard)
			switch {
			case tt.wantErrContains == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErrContains != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErrContains)):
				t.Fatalf("error %v, want one naming %q", err, tt.wantErrContains)
			}
			if valid != tt.valid || skipped != tt.skipped {
				t.Errorf("valid %d, skipped %d; want %d, %d", valid, skipped, tt.valid, tt.skipped)
			}
		})
	}
}
