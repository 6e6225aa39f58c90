package verify

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the report as tables for people.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "project %s (%s): %s in %.1fs\n\n", r.Project, r.Compose, strings.ToUpper(string(r.Status)), r.Seconds)
	if len(r.Ports) > 0 {
		fmt.Fprintln(tw, "SERVICE\tPORT\tREAL HOST PORT\tTEST HOST PORT")
		for _, p := range r.Ports {
			real, test := p.Real, p.Test
			if real == "" {
				real, test = "(ephemeral)", "(ephemeral)"
			}
			if p.HostIP != "" {
				real, test = p.HostIP+":"+real, p.HostIP+":"+test
			}
			fmt.Fprintf(tw, "%s\t%d/%s\t%s\t%s\n", p.Service, p.Target, p.Protocol, real, test)
		}
		fmt.Fprintln(tw)
	}
	if len(r.Exposure) > 0 {
		fmt.Fprintln(tw, "SERVICE\tPORT\tBEFORE\tPLAN\tNOW\tEXPOSURE")
		for _, e := range r.Exposure {
			fmt.Fprintf(tw, "%s\t%d/%s\t%s\t%s\t%s\t%s\n", e.Service, e.Port, e.Protocol, e.Before, e.Plan, e.Now, e.Status)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "STATUS\tCHECK\tSERVICE\tTARGET\tREASON")
	for _, c := range r.Checks {
		target := c.Target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Status, c.Name, c.Service, target, c.Reason)
	}
	for _, e := range r.Exposure {
		if e.Status == Fail {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%s\t%s\n", e.Status, CheckExposure, e.Service, e.Port, e.Protocol, e.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.ExposureNote != "" {
		fmt.Fprintf(w, "\n%s\n", r.ExposureNote)
	}
	if r.BenchEnv != nil {
		if err := r.writeBenchText(w); err != nil {
			return err
		}
	}
	if r.Status == Incomplete {
		verdict := "INCOMPLETE: not a pass"
		if r.AllowSkip {
			verdict = "INCOMPLETE (--allow-skip)"
		}
		fmt.Fprintf(w, "\n%s: %d skipped:\n", verdict, len(r.Skipped))
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	if r.KeptHint != "" {
		fmt.Fprintf(w, "\n%s\n", r.KeptHint)
	}
	if r.Teardown != "" {
		fmt.Fprintf(w, "\n%s\n", r.Teardown)
	}
	return nil
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: one test suite, one test case
// per check, named CHECK SERVICE TARGET.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: "unhost verify " + r.Project, Time: fmt.Sprintf("%.3f", r.Seconds)}
	for _, c := range r.Checks {
		name := c.Name + " " + c.Service
		if c.Target != "" {
			name += " " + c.Target
		}
		tc := junitCase{Name: name, Classname: "unhost.verify." + c.Name}
		switch c.Status {
		case Fail:
			tc.Failure = &junitMessage{Message: c.Reason, Body: c.Reason}
			s.Failures++
		case Skip:
			tc.Skipped = &junitMessage{Message: c.Reason}
			s.Skipped++
		default:
			tc.SystemOut = c.Reason
		}
		s.Cases = append(s.Cases, tc)
	}
	for _, e := range r.Exposure {
		tc := junitCase{Name: fmt.Sprintf("%s %s %d/%s", CheckExposure, e.Service, e.Port, e.Protocol), Classname: "unhost.verify." + CheckExposure}
		if e.Status == Fail {
			tc.Failure = &junitMessage{Message: e.Reason, Body: e.Reason}
			s.Failures++
		} else {
			tc.SystemOut = fmt.Sprintf("before %s, plan %s, now %s: %s", e.Before, e.Plan, e.Now, e.Reason)
		}
		s.Cases = append(s.Cases, tc)
	}
	s.Tests = len(s.Cases)
	doc := junitSuites{Name: "unhost verify", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
