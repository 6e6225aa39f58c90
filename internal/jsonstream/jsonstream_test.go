package jsonstream

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"stream":"Step 1/3"}` + "\n" + `{"stream":"done"}`, ""},
		{`{"stream":"x"}{"error":"boom\n","errorDetail":{"message":"boom"}}`, "boom"},
		{`{"errorDetail":{"message":"detail only"}}`, "detail only"},
		{`{"stream":`, "read engine output"},
		{``, ""},
	}
	for _, c := range cases {
		err := Check(strings.NewReader(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}
