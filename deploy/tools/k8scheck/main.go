// Command k8scheck validates Kubernetes manifests (the Helm chart's
// rendered output) offline against the Kubernetes API's own schema: each
// document is decoded strictly into its Go type (unknown or duplicate
// fields, wrong types and malformed quantities are errors) and checked
// against the OpenAPI-derived schema client-go ships for server-side apply
// (every field declared, of its declared type). No cluster and no network:
// the schema is compiled in, at the Kubernetes version of go.mod.
//
//	helm template deploy/helm/omni-hub | go run ./deploy/tools/k8scheck
//
// Kinds outside the built-in API (custom resources such as a
// ServiceMonitor) are reported as not checked, never as valid.
// Exit status: 0 all built-in documents valid, 1 otherwise.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

func main() {
	n, skipped, err := check(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8scheck:", err)
		os.Exit(1)
	}
	fmt.Printf("k8scheck: %d documents valid, %d of kinds outside the built-in API not checked\n", n, skipped)
}

func check(in io.Reader, out io.Writer) (valid, skipped int, err error) {
	strict := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	tc := applyconfigurations.NewTypeConverter(scheme.Scheme)
	r := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var errs []error
	for i := 1; ; i++ {
		doc, rerr := r.Read()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return valid, skipped, rerr
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		js, jerr := yaml.YAMLToJSON(doc)
		if jerr != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, jerr))
			continue
		}
		if string(js) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if jerr := u.UnmarshalJSON(js); jerr != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, jerr))
			continue
		}
		gvk := u.GroupVersionKind()
		name := fmt.Sprintf("%s %s/%s", gvk.Kind, gvk.GroupVersion(), u.GetName())
		if !scheme.Scheme.Recognizes(gvk) {
			fmt.Fprintf(out, "not checked (not a built-in kind): %s\n", name)
			skipped++
			continue
		}
		if _, _, derr := strict.Decode(js, nil, nil); derr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, derr))
			continue
		}
		if _, terr := tc.ObjectToTyped(u); terr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, terr))
			continue
		}
		fmt.Fprintf(out, "valid: %s\n", name)
		valid++
	}
	return valid, skipped, errors.Join(errs...)
}
