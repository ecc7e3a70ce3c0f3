package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds a profile file; real ones are a few kilobytes.
const maxFileSize = 64 << 10

// Ext is the extension of profile files; other files are ignored.
const Ext = ".yaml"

// validName reports whether s can be a profile name (a file stem): 1 to 64
// lower-case letters, digits, '.', '_' and '-', starting with a letter or
// digit, so a name from an agent's config cannot climb out of the
// profiles directory.
func validName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[0] == '_' || s[0] == '-' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Load reads the profile called name: the file <name>.yaml anywhere under
// dir. It fails with ErrNotFound, ErrDuplicate (two files with that stem)
// or errors wrapping ErrInvalid.
func Load(dir, name string) (*Profile, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: %q is not a profile name (lower-case letters, digits, '.', '_', '-')", ErrNotFound, name)
	}
	files, err := findProfiles(dir)
	if err != nil {
		return nil, err
	}
	switch paths := files[name]; len(paths) {
	case 0:
		return nil, fmt.Errorf("%w: no %s%s under %s", ErrNotFound, name, Ext, dir)
	case 1:
		return LoadFile(paths[0])
	default:
		return nil, fmt.Errorf("%w: %s", ErrDuplicate, strings.Join(paths, " and "))
	}
}

// LoadAll loads every profile under dir, sorted by name, and reports every
// problem in every file (errors.Join of *Error values and ErrDuplicate
// errors). CI runs it over firmware-configs/.
func LoadAll(dir string) ([]*Profile, error) {
	files, err := findProfiles(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*Profile
	var errs []error
	for _, n := range names {
		if paths := files[n]; len(paths) > 1 {
			errs = append(errs, fmt.Errorf("%w: %s", ErrDuplicate, strings.Join(paths, " and ")))
		}
		for _, path := range files[n] {
			p, err := LoadFile(path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}

// findProfiles maps each stem to the profile files that have it.
func findProfiles(dir string) (map[string][]string, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: profiles directory %s: not a readable directory", ErrNotFound, dir)
	}
	files := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && filepath.Ext(path) == Ext {
			stem := strings.TrimSuffix(d.Name(), Ext)
			files[stem] = append(files[stem], path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: reading profiles directory: %w", ErrNotFound, err)
	}
	return files, nil
}

// LoadFile reads and validates one profile file; its stem is the name.
func LoadFile(path string) (*Profile, error) {
	fail := func(msg string) error { return &Error{File: path, Msg: msg} }
	name := strings.TrimSuffix(filepath.Base(path), Ext)
	if !validName(name) {
		return nil, fail("file name is not a valid profile name (lower-case letters, digits, '.', '_', '-')")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fail("cannot read: " + err.Error())
	}
	if len(data) > maxFileSize {
		return nil, fail(fmt.Sprintf("larger than %d KiB", maxFileSize>>10))
	}
	return parse(path, name, data)
}

// parse is LoadFile on bytes already read.
func parse(path, name string, data []byte) (*Profile, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, &Error{File: path, Msg: "not valid YAML: " + yamlMessage(err)}
	}
	allowed, sections := map[string]bool{}, map[string]bool{}
	schemaKeys(reflect.TypeOf(Profile{}), "", allowed, sections)
	c := checker{file: path, lines: keyLines(data), sections: sections, isSet: v.IsSet}

	// Unknown keys first: decoding a misspelt file would only add noise.
	for _, k := range v.AllKeys() {
		if !allowed[k] {
			c.add(k, "unknown key"+suggest(k, allowed))
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}

	p := &Profile{Name: name, File: path}
	if err := v.UnmarshalExact(p, strictDecoding); err != nil {
		c.decodeErrors(err)
		return nil, c.err()
	}
	c.validate(p)
	if err := c.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// strictDecoding turns off viper's weak typing (no "9600" for 9600, no
// 1 for true) and reads durations only from strings with a unit.
func strictDecoding(dc *mapstructure.DecoderConfig) {
	dc.WeaklyTypedInput = false
	dc.DecodeHook = durationHook
}

func durationHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	s, ok := data.(string)
	if !ok {
		return nil, errors.New("must be a duration with a unit, like 100ms or 2s")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, errors.New("must be a duration with a unit, like 100ms or 2s")
	}
	return d, nil
}

// schemaKeys collects the dotted keys of t's mapstructure tags (sections
// and leaves) into out, and the sections into sections, lower-cased as
// viper reports them.
func schemaKeys(t reflect.Type, prefix string, out, sections map[string]bool) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		out[key] = true
		ft := t.Field(i).Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			sections[key] = true
			schemaKeys(ft, key+".", out, sections)
		}
	}
}

// suggest names the allowed key closest to k, for typos.
func suggest(k string, allowed map[string]bool) string {
	parent, leaf := "", k
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		parent, leaf = k[:i+1], k[i+1:]
	}
	best, bestD := "", 3
	for a := range allowed {
		if !strings.HasPrefix(a, parent) || strings.Contains(a[len(parent):], ".") {
			continue
		}
		if d := editDistance(leaf, a[len(parent):]); d < bestD || (d == bestD && a < best) {
			best, bestD = a, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// keyLines maps each dotted key (lower-cased) to its line in the file, so
// errors can point at it. It is best effort: viper has already parsed the
// same bytes and reports syntax errors itself.
func keyLines(data []byte) map[string]int {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return nil
	}
	out := map[string]int{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := prefix + strings.ToLower(n.Content[i].Value)
				out[k] = n.Content[i].Line
				walk(n.Content[i+1], k+".")
			}
		}
	}
	walk(&root, "")
	return out
}

// yamlMessage trims viper's wrapping of a YAML error to the parser's own
// words, which carry the line number.
func yamlMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, "yaml: "); i >= 0 {
		return s[i+len("yaml: "):]
	}
	return s
}
