package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxJSONDepth is the deepest nesting CanonicalJSON accepts (the server refuses deeper too).
const MaxJSONDepth = 128

// CanonicalJSON serializes a JSON value to canonical (RFC 8785) UTF-8 bytes: object keys
// sorted by UTF-16 code units, no whitespace, strings escaped only where JSON requires it,
// numbers in ECMAScript form (1.0 → 1, 1e21 → 1e+21). Values are what encoding/json or
// structpb.Struct.AsMap produce: nil, bool, float64 (or any Go integer/float type), string,
// []any and map[string]any.
//
// It returns an error for NaN or an infinity, a non-JSON type, invalid UTF-8 or nesting
// deeper than MaxJSONDepth.
func CanonicalJSON(value any) ([]byte, error) {
	var b strings.Builder
	if err := writeJSON(&b, value, 0); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// BytesDigest is "sha256:" + lowercase hex of data (the content address of an artifact).
func BytesDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// JSONDigest is BytesDigest of the canonical JSON of value.
func JSONDigest(value any) (string, error) {
	canonical, err := CanonicalJSON(value)
	if err != nil {
		return "", err
	}
	return BytesDigest(canonical), nil
}

func writeJSON(b *strings.Builder, value any, depth int) error {
	switch v := value.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case float64:
		return writeNumber(b, v)
	case float32:
		return writeNumber(b, float64(v))
	case int:
		return writeNumber(b, float64(v))
	case int32:
		return writeNumber(b, float64(v))
	case int64:
		return writeNumber(b, float64(v))
	case uint32:
		return writeNumber(b, float64(v))
	case uint64:
		return writeNumber(b, float64(v))
	case string:
		return writeString(b, v)
	case []any:
		if depth >= MaxJSONDepth {
			return fmt.Errorf("JSON nests deeper than %d levels", MaxJSONDepth)
		}
		b.WriteByte('[')
		for i, item := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, item, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		if depth >= MaxJSONDepth {
			return fmt.Errorf("JSON nests deeper than %d levels", MaxJSONDepth)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		// RFC 8785 orders keys by UTF-16 code units, which differs from Go's byte (code
		// point) order for characters above U+FFFF.
		sort.Slice(keys, func(i, j int) bool { return utf16Less(keys[i], keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeString(b, k); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeJSON(b, v[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("%T is not a JSON value", value)
	}
	return nil
}

func utf16Less(a, b string) bool {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

func writeString(b *strings.Builder, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("JSON string is not valid UTF-8")
	}
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return nil
}

// writeNumber prints ECMAScript Number::toString of v over the shortest round-trip digits.
func writeNumber(b *strings.Builder, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("JSON has no form for %v", v)
	}
	if v == 0 {
		b.WriteByte('0') // also -0
		return nil
	}
	if v < 0 {
		b.WriteByte('-')
		v = -v
	}
	// 'e' with precision -1 gives the shortest digits that round-trip: d.ddddde±XX.
	sci := strconv.FormatFloat(v, 'e', -1, 64)
	mant, expText, _ := strings.Cut(sci, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, err := strconv.Atoi(expText)
	if err != nil {
		return err
	}
	b.WriteString(formatES(digits, exp+1))
	return nil
}

// formatES lays out digits (no leading zero) as 0.<digits> × 10^n the way ECMAScript does.
func formatES(digits string, n int) string {
	k := len(digits)
	switch {
	case k <= n && n <= 21:
		return digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return "0." + strings.Repeat("0", -n) + digits
	}
	mantissa := digits
	if k > 1 {
		mantissa = digits[:1] + "." + digits[1:]
	}
	e := n - 1
	sign := "+"
	if e < 0 {
		sign = "-"
		e = -e
	}
	return mantissa + "e" + sign + strconv.Itoa(e)
}
