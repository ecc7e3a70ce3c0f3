package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadAll_Shipped validates every profile in firmware-configs/, so a
// broken profile fails CI, and checks each has its programming note.
func TestLoadAll_Shipped(t *testing.T) {
	dir := shippedDir(t)
	ps, err := LoadAll(dir)
	if err != nil {
		t.Fatalf("shipped profiles do not load:\n%v", err)
	}
	want := map[string]string{
		"generic-line-scanner": "scanners", "line-scanner-no-aim": "scanners", "stx-etx-scanner": "scanners",
		"uhf-a0-r2000": "rfid", "uhf-bb-m100": "rfid",
	}
	for _, p := range ps {
		if sub, ok := want[p.Name]; ok && filepath.Base(filepath.Dir(p.File)) != sub {
			t.Errorf("%s is in %s, want %s/", p.Name, p.File, sub)
		}
		delete(want, p.Name)
		note := strings.TrimSuffix(p.File, Ext) + ".md"
		if b, err := os.ReadFile(note); err != nil || len(b) < 200 {
			t.Errorf("%s: no programming note %s (%v)", p.Name, note, err)
		}
		if _, err := p.NewFramer(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
	for n := range want {
		t.Errorf("profile %s is not shipped", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "SCHEMA.md")); err != nil {
		t.Errorf("firmware-configs/SCHEMA.md: %v", err)
	}
}

func TestLoad_FindsByStemInSubdirectories(t *testing.T) {
	p := shipped(t, "generic-line-scanner")
	if p.Name != "generic-line-scanner" || !strings.HasSuffix(p.File, filepath.Join("scanners", "generic-line-scanner.yaml")) {
		t.Fatalf("got %s from %s", p.Name, p.File)
	}
	if p.Serial.ReadTimeout != 100*time.Millisecond || p.Serial.DataBits != 8 || p.Barcode == nil || !p.Barcode.AIM {
		t.Fatalf("unexpected profile %+v %+v", p.Serial, p.Barcode)
	}
	r := shipped(t, "uhf-a0-r2000")
	if r.RFID == nil || r.RFID.Poll == nil || len(r.RFID.Poll.Frame) != 6 || r.RFID.Poll.Every != 250*time.Millisecond {
		t.Fatalf("unexpected rfid section %+v", r.RFID)
	}
}

func TestLoad_NotFound(t *testing.T) {
	dir := shippedDir(t)
	for _, name := range []string{"no-such-scanner", "../firmware-configs/scanners/generic-line-scanner", "", "Generic", ".hidden"} {
		if _, err := Load(dir, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Load(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing directory: %v", err)
	}
}

func TestLoad_Duplicate(t *testing.T) {
	dir := t.TempDir()
	body, _ := os.ReadFile(filepath.Join(shippedDir(t), "scanners", "generic-line-scanner.yaml"))
	writeProfile(t, dir, "scanners", "twin", string(body))
	writeProfile(t, dir, "more", "twin", string(body))
	if _, err := Load(dir, "twin"); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("Load = %v, want ErrDuplicate", err)
	}
	if _, err := LoadAll(dir); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("LoadAll = %v, want ErrDuplicate", err)
	}
}

const scannerBase = `description: test scanner
serial:
  baud: 9600
framing:
  type: delimited
  terminator: CR
meaning: barcode
barcode:
  aim: true
`

const readerBase = `description: test reader
serial:
  baud: 115200
framing:
  type: binary
  header: "0xA0"
  length_offset: 1
  length_size: 1
  length_covers: after-length-through-checksum
  checksum: sum8-twos
meaning: rfid
rfid:
  decoder: a0-inventory
`

// TestLoad_Errors: every error names the file, the line and the key, and
// says why.
func TestLoad_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		base string
		edit [2]string // replace edit[0] with edit[1] in base
		want string    // substring of the error, after the file name
	}{
		{"unknown key", scannerBase, [2]string{"  aim: true", "  aim: true\n  aimm: true"}, ":10: barcode.aimm: unknown key (did you mean barcode.aim?)"},
		{"unknown section", scannerBase, [2]string{"meaning:", "vendor: acme\nmeaning:"}, ":7: vendor: unknown key"},
		{"bad terminator", scannerBase, [2]string{"terminator: CR", "terminator: CRL"}, ":6: framing.terminator: must be one of CR, LF, CRLF, TAB, EOL"},
		{"unquoted hex", readerBase, [2]string{`header: "0xA0"`, "header: 0xA0"}, ":6: framing.header: must be text (quote byte strings: \"0xA0\"), not the number 160"},
		{"key of another framing", scannerBase, [2]string{"terminator: CR", "terminator: CR\n  header: \"0xA0\""}, ":7: framing.header: not used by type delimited"},
		{"missing meaning", scannerBase, [2]string{"meaning: barcode\n", ""}, ": meaning: required: barcode or rfid"},
		{"bad meaning", scannerBase, [2]string{"meaning: barcode", "meaning: qr"}, ":7: meaning: must be barcode or rfid"},
		{"aim missing", scannerBase, [2]string{"  aim: true\n", "  gs1_separator: GS\n"}, ":8: barcode.aim: required"},
		{"aim not a bool", scannerBase, [2]string{"aim: true", "aim: yes please"}, ":9: barcode.aim: must be true or false"},
		{"separator in data charset", scannerBase, [2]string{"  aim: true", "  aim: true\n  gs1_separator: \"*\""}, ":10: barcode.gs1_separator: 0x2A can occur"},
		{"separator is the terminator", scannerBase, [2]string{"  aim: true", "  aim: true\n  gs1_separator: CR"}, ":10: barcode.gs1_separator: CR is also in framing.terminator"},
		{"baud missing", scannerBase, [2]string{"  baud: 9600\n", "  parity: none\n"}, ":2: serial.baud: required"},
		{"baud odd", scannerBase, [2]string{"baud: 9600", "baud: 9601"}, ":3: serial.baud: 9601 is not a standard rate"},
		{"baud as text", scannerBase, [2]string{"baud: 9600", `baud: "9600"`}, `:3: serial.baud: must be a whole number, not the text "9600"`},
		{"timeout without unit", scannerBase, [2]string{"  baud: 9600", "  baud: 9600\n  read_timeout: 100"}, ":4: serial.read_timeout: must be a duration with a unit"},
		{"timeout too short", scannerBase, [2]string{"  baud: 9600", "  baud: 9600\n  read_timeout: 50ms"}, ":4: serial.read_timeout: must be 100ms to 1s"},
		{"stop bits", scannerBase, [2]string{"  baud: 9600", "  baud: 9600\n  stop_bits: 3"}, ":4: serial.stop_bits: must be 1 or 2"},
		{"parity", scannerBase, [2]string{"  baud: 9600", "  baud: 9600\n  parity: N"}, ":4: serial.parity: must be none, odd or even"},
		{"rfid section on a scanner", scannerBase, [2]string{"meaning: barcode", "rfid:\n  decoder: a0-inventory\nmeaning: barcode"}, ":7: rfid: only for meaning: rfid"},
		{"scanner on binary framing", readerBase, [2]string{"meaning: rfid\nrfid:\n  decoder: a0-inventory\n", "meaning: barcode\nbarcode:\n  aim: true\n"}, ":5: framing.type: a scanner's frames are text"},
		{"unknown decoder", readerBase, [2]string{"decoder: a0-inventory", "decoder: a1"}, ":13: rfid.decoder: must be one of a0-inventory, bb-inventory"},
		{"decoder for another header", readerBase, [2]string{"decoder: a0-inventory", "decoder: bb-inventory"}, ":13: rfid.decoder: bb-inventory reads frames with header 0xBB, framing.header is 0xA0"},
		{"poll with a bad checksum", readerBase, [2]string{"decoder: a0-inventory", "decoder: a0-inventory\n  poll:\n    command: \"0xA0 04 FF 89 01 D4\""}, ":15: rfid.poll.command: is not exactly one valid frame"},
		{"poll too often", readerBase, [2]string{"decoder: a0-inventory", "decoder: a0-inventory\n  poll:\n    command: \"0xA0 04 FF 89 01 D3\"\n    every: 1ms"}, ":16: rfid.poll.every: must be 0"},
		{"length covers", readerBase, [2]string{"after-length-through-checksum", "rest"}, ":9: framing.length_covers: must be one of"},
		{"not YAML", scannerBase, [2]string{"  aim: true", "  aim: [true"}, ": not valid YAML: "},
		{"not a mapping", scannerBase, [2]string{"serial:\n  baud: 9600", "serial: 9600"}, ":2: serial: must be a section of keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(tc.base, tc.edit[0], tc.edit[1], 1)
			if body == tc.base {
				t.Fatalf("edit %q not applied", tc.edit[0])
			}
			path := writeProfile(t, t.TempDir(), "scanners", "x", body)
			_, err := LoadFile(path)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), path+tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s%s", err, path, tc.want)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.File != path {
				t.Fatalf("not an *Error for %s: %#v", path, err)
			}
		})
	}
}

func TestLoad_ReportsEveryProblem(t *testing.T) {
	body := strings.NewReplacer("baud: 9600", "baud: 1", "terminator: CR", "terminator: CRL", "aim: true", "aim: 1").Replace(scannerBase)
	_, err := LoadFile(writeProfile(t, t.TempDir(), "s", "x", body))
	// aim: 1 is a type error, found while decoding; the others need a
	// decoded profile, so fix the type and look again.
	if err == nil || !strings.Contains(err.Error(), "barcode.aim: must be true or false") {
		t.Fatalf("err = %v", err)
	}
	body = strings.Replace(body, "aim: 1", "aim: true", 1)
	_, err = LoadFile(writeProfile(t, t.TempDir(), "s", "x", body))
	for _, want := range []string{"serial.baud: 1 is not a standard rate", "framing.terminator: must be one of"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}

func TestLoadFile_TooLarge(t *testing.T) {
	path := writeProfile(t, t.TempDir(), "s", "big", scannerBase+"# "+strings.Repeat("x", maxFileSize)+"\n")
	if _, err := LoadFile(path); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}
