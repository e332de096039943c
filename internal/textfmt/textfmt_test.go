package textfmt

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"Pct 0", Pct(0), "0%"},
		{"Pct tiny", Pct(0.0004), "<0.1%"},
		{"Pct small", Pct(0.025), "2.5%"},
		{"Pct small whole", Pct(0.05), "5%"},
		{"Pct", Pct(0.4234), "42%"},
		{"Pct NaN", Pct(nan), "?"},
		{"Pct huge", Pct(6.4e117), "6.4e+119%"},
		{"Pct max", Pct(-math.MaxFloat64), "-1.8e+310%"},
		{"PerSec", PerSec(1.254), "1.25 s/s"},
		{"PerSec Inf", PerSec(inf), "?"},
		{"PerWindow", PerWindow(5, 2), "2.50 s/s"},
		{"PerWindow unknown", PerWindow(12.5, 0), "12.50 s"},
		{"Num whole", Num(3), "3"},
		{"Num large", Num(123.4), "123"},
		{"Num tens", Num(12.34), "12.3"},
		{"Num", Num(1.234), "1.23"},
		{"Num tiny", Num(0.004), "<0.01"},
		{"Num NaN", Num(nan), "?"},
		{"Num huge", Num(1e300), "1e+300"},
		{"Num max", Num(-math.MaxFloat64), "-1.8e+308"},
		{"Num 1e15", Num(1e15), "1e+15"},
		{"Num under 1e15", Num(999999999999999), "999999999999999"},
		{"NumPrecise huge", NumPrecise(1.2345e200), "1.23e+200"},
		{"NumPrecise", NumPrecise(1.2345), "1.234"},
		{"NumPrecise tens", NumPrecise(12.34), "12.3"},
		{"NumPrecise tiny", NumPrecise(0.000456), "0.00046"},
		{"SI", SI(1234567, "B/s"), "1.23 MB/s"},
		{"SI small", SI(12.5, "B"), "12 B"},
		{"SIDecimal small", SIDecimal(0.25, "B/s"), "0.25 B/s"},
		{"SIDecimal no unit", SIDecimal(12, ""), "12"},
		{"SIDecimal large", SIDecimal(2500, ""), "2.5 k"},
		{"Bytes", Bytes(512), "512 B"},
		{"Bytes MiB", Bytes(1.5 * 1024 * 1024), "1.5 MiB"},
		{"Dur s", Dur(1.23456e9), "1.23s"},
		{"Dur ms", Dur(4.56789e6), "4.57ms"},
		{"Dur µs", Dur(7891), "7.89µs"},
		{"Dur ns", Dur(12), "12ns"},
		{"Dur past int64", Dur(1e300), "1e+291s"},
		{"Dur past int64, negative", Dur(-math.MaxFloat64), "-1.8e+299s"},
		{"Dur 300 years", Dur(300 * 365 * 24 * 3600 * 1e9), "9.46e+09s"},
		{"Dur NaN", Dur(nan), "?"},
		{"Dur Inf", Dur(inf), "?"},
		{"Bound huge", Bound(1e300), "1e+291s"},
		{"Bound 2^18ns", Bound(1 << 18), "270µs"},
		{"Bound 1ms", Bound(1e6), "1ms"},
		{"Bound 0", Bound(0), "0s"},
		{"Value ratio", Value(0.5, "ratio"), "50%"},
		{"Value seconds", Value(0.0012345, "seconds"), "1.235ms"},
		{"Value bytes", Value(2e9, "bytes"), "2 GB"},
		{"Value count/s", Value(3, "count/s"), "3/s"},
		{"Value other", Value(2.5, "pages/s"), "2.50 pages/s"},
		{"Value NaN", Value(nan, "seconds"), "?"},
		{"Value seconds past int64", Value(1e300, "seconds"), "1e+300s"},
		{"Value huge count", Value(math.MaxFloat64, "count"), "1.8e+308"},
		{"Count one", Count(1, "category", "categories"), "1 category"},
		{"Count many", Count(3, "category", "categories"), "3 categories"},
		{"Plural", Plural(0, "change"), "0 changes"},
		{"Loads", Loads(map[string]float64{"io": 0.31, "cpu": 1.2, "memory": 0.004, "none": 5}, "none"),
			"cpu 1.20, io 0.31 threads bound per second"},
		{"Loads none", Loads(map[string]float64{"none": 1}, "none"), ""},
		{"OrDash", OrDash(""), "-"},
		{"ShortNames", ShortNames("crypto/internal/fips140/sha256.blockSHANI from crypto/sha256.Sum256"), "sha256.blockSHANI from sha256.Sum256"},
		{"ShortNames method", ShortNames("compress/flate.(*compressor).findMatch"), "flate.(*compressor).findMatch"},
		{"ShortNames library", ShortNames("futex from [libc.so.6]"), "futex from [libc.so.6]"},
		{"ShortNames generic and file", ShortNames("main.F[...] /usr/lib/x.so"), "main.F[...] /usr/lib/x.so"},
		{"ShortNames generic with path", ShortNames("example.com/m/p.F[example.com/m/q.T]"), "p.F[example.com/m/q.T]"},
		{"ShortNames address", ShortNames("127.0.0.1:42579"), "127.0.0.1:42579"},
		{"Wrap", strings.Join(Wrap("aaa bbb ccc dddddddddddddddddddddddd e", 20), "|"), "aaa bbb ccc|dddddddddddddddddddddddd|e"},
		{"Wrap empty", strings.Join(Wrap("", 20), "|"), ""},
		{"MarkdownText", MarkdownText("a|b *c* _d_ `e` <f> \\"), `a\|b \*c\* \_d\_ \` + "`e\\`" + ` &lt;f> \\`},
		{"MarkdownCode", MarkdownCode("a|b `c`"), `a\|b 'c'`},
		{"Span start only", Span(time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)), 0), "from 2025-01-02 02:04:05 UTC"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestEscaping(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"Printable ordinary", Printable(`Parse/size=1k "x" \ é 漢-8`), `Parse/size=1k "x" \ é 漢-8`},
		{"Printable escape sequence", Printable("X\x1b[2J\x1b]0;pwned\x07-8"), `X\x1b[2J\x1b]0;pwned\a-8`},
		{"Printable CR and newline", Printable("ok\rFAIL\nnext"), `ok\rFAIL\nnext`},
		{"Printable tab", Printable("a\tb"), `a\tb`},
		{"Printable C1 and DEL", Printable("a\u009bb\x7f"), `a\u009bb\x7f`},
		{"Printable bidi override", Printable("abc\u202edef"), `abc\u202edef`},
		{"Printable invalid UTF-8", Printable("a\xffb"), `a\xffb`},
		{"Printable backslash beside an escape", Printable("a\\b\x1b"), `a\\b\x1b`},
		{"MarkdownText escapes controls", MarkdownText("a\nb|c"), `a\\nb\|c`}, // shows as a\nb|c
		{"MarkdownText link", MarkdownText("[click](http://x) ![i](y) [libc.so.6]"), `[click\](http://x) ![i\](y) [libc.so.6]`},
		{"MarkdownText strike and heading", MarkdownText("# ~~x~~"), `\# \~\~x\~\~`},
		{"MarkdownText quote", MarkdownText("> x > y"), `\> x > y`},
		{"MarkdownText entity", MarkdownText("&lt;b&gt;"), `&amp;lt;b&amp;gt;`},
		{"MarkdownText ordinary", MarkdownText("need >= 6 samples, 1.5 B/op"), "need >= 6 samples, 1.5 B/op"},
		{"MarkdownCode escapes controls", MarkdownCode("X\x1b[31m|`"), `X\x1b[31m\|'`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestJSONNumber(t *testing.T) {
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if p := JSONNumber(x); p != nil {
			t.Errorf("JSONNumber(%v) = %v, want nil", x, *p)
		}
	}
	for _, x := range []float64{0, -1.5, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		if p := JSONNumber(x); p == nil || *p != x {
			t.Errorf("JSONNumber(%v) = %v, want a pointer to it", x, p)
		}
	}
}
