package framing

import "strings"

// Checksum is a frame check algorithm.
type Checksum uint8

// Checksums. The CRC variants are named as in the "Catalogue of parametrised
// CRC algorithms" (reveng); reader manuals often call CRC16MCRF4XX
// "CRC-16/CCITT, polynomial 0x8408, preset 0xFFFF".
const (
	// NoChecksum: the frame carries none.
	NoChecksum Checksum = iota
	// Sum8: the low byte of the sum of the covered bytes (the 0xBB ... 0x7E
	// reader family).
	Sum8
	// Sum8Twos: the two's complement of Sum8, so that the covered bytes plus
	// the checksum sum to zero (the 0xA0 / R2000 reader family).
	Sum8Twos
	// XOR8: the XOR of the covered bytes, a BCC or LRC.
	XOR8
	// CRC16MCRF4XX: reflected polynomial 0x8408 (0x1021), init 0xFFFF, no
	// final XOR; check value 0x6F91.
	CRC16MCRF4XX
	// CRC16X25: as CRC16MCRF4XX with a final XOR 0xFFFF (CRC-16/IBM-SDLC);
	// check value 0x906E.
	CRC16X25
	// CRC16Modbus: reflected polynomial 0xA001 (0x8005), init 0xFFFF, no
	// final XOR; check value 0x4B37.
	CRC16Modbus
)

var checksumNames = [...]string{
	NoChecksum: "none", Sum8: "sum8", Sum8Twos: "sum8-twos", XOR8: "xor8",
	CRC16MCRF4XX: "crc16-mcrf4xx", CRC16X25: "crc16-x25", CRC16Modbus: "crc16-modbus",
}

func (c Checksum) String() string {
	if int(c) < len(checksumNames) {
		return checksumNames[c]
	}
	return "unknown"
}

// ParseChecksum maps a profile's checksum name to a Checksum. Besides the
// names String returns it accepts "crc16-ccitt-8408" for CRC16MCRF4XX, the
// way reader manuals describe it.
func ParseChecksum(name string) (Checksum, bool) {
	switch name = strings.ToLower(name); name {
	case "", "none":
		return NoChecksum, true
	case "crc16-ccitt-8408":
		return CRC16MCRF4XX, true
	}
	for i, n := range checksumNames {
		if n == name {
			return Checksum(i), true
		}
	}
	return NoChecksum, false
}

// Size is the number of bytes the checksum takes on the wire.
func (c Checksum) Size() int {
	switch c {
	case NoChecksum:
		return 0
	case CRC16MCRF4XX, CRC16X25, CRC16Modbus:
		return 2
	}
	return 1
}

// Sum computes the checksum of data; one-byte checksums are in the low byte.
func (c Checksum) Sum(data []byte) uint16 {
	switch c {
	case Sum8, Sum8Twos:
		var s byte
		for _, b := range data {
			s += b
		}
		if c == Sum8Twos {
			s = -s
		}
		return uint16(s)
	case XOR8:
		var x byte
		for _, b := range data {
			x ^= b
		}
		return uint16(x)
	case CRC16MCRF4XX:
		return crc16Reflected(data, 0x8408)
	case CRC16X25:
		return crc16Reflected(data, 0x8408) ^ 0xFFFF
	case CRC16Modbus:
		return crc16Reflected(data, 0xA001)
	}
	return 0
}

// crc16Reflected is a bitwise reflected CRC-16 with init 0xFFFF. Frames are
// a few dozen bytes, so a table buys little and would be package state.
func crc16Reflected(data []byte, poly uint16) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range data {
		crc ^= uint16(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ poly
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// put writes sum into dst (len Size()) in the given byte order.
func (c Checksum) put(dst []byte, sum uint16, bigEndian bool) {
	switch c.Size() {
	case 1:
		dst[0] = byte(sum)
	case 2:
		putUint(dst, uint(sum), bigEndian)
	}
}

// get reads a checksum of Size() bytes from src.
func (c Checksum) get(src []byte, bigEndian bool) uint16 {
	switch c.Size() {
	case 1:
		return uint16(src[0])
	case 2:
		return uint16(getUint(src, bigEndian))
	}
	return 0
}

func getUint(b []byte, bigEndian bool) uint {
	var v uint
	for i := range b {
		if bigEndian {
			v = v<<8 | uint(b[i])
		} else {
			v |= uint(b[i]) << (8 * i)
		}
	}
	return v
}

func putUint(b []byte, v uint, bigEndian bool) {
	for i := range b {
		if bigEndian {
			b[len(b)-1-i] = byte(v >> (8 * i))
		} else {
			b[i] = byte(v >> (8 * i))
		}
	}
}
