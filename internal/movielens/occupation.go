package movielens

import "strings"

// occupationAliases maps lower-cased names, including every ML-100K
// occupation and the words users type, to canonical names. Both datasets'
// models therefore accept the same request values.
var occupationAliases = [...][2]string{
	// ML-100K u.occupation
	{"administrator", "clerical/admin"},
	{"artist", "artist"},
	{"doctor", "doctor/health care"},
	{"educator", "academic/educator"},
	{"engineer", "technician/engineer"},
	{"entertainment", "artist"},
	{"executive", "executive/managerial"},
	{"healthcare", "doctor/health care"},
	{"homemaker", "homemaker"},
	{"lawyer", "lawyer"},
	{"librarian", "academic/educator"},
	{"marketing", "sales/marketing"},
	{"none", "unemployed"},
	{"other", "other"},
	{"programmer", "programmer"},
	{"retired", "retired"},
	{"salesman", "sales/marketing"},
	{"scientist", "scientist"},
	{"student", "college/grad student"},
	{"technician", "technician/engineer"},
	{"writer", "writer"},
	// common short forms
	{"academic", "academic/educator"},
	{"clerical", "clerical/admin"},
	{"admin", "clerical/admin"},
	{"sales", "sales/marketing"},
	{"tradesman", "tradesman/craftsman"},
	{"craftsman", "tradesman/craftsman"},
	{"farmer", "farmer"},
	{"unemployed", "unemployed"},
}

// CanonicalOccupation maps an occupation as a client or a dataset writes it
// (case-insensitive, surrounding space ignored) to its canonical name.
func CanonicalOccupation(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if n := OccupationName([]byte(s)); n != "" { // the common case, and much cheaper than EqualFold
		return n, true
	}
	for _, n := range occupationNames {
		if strings.EqualFold(s, n) {
			return n, true
		}
	}
	for _, a := range occupationAliases {
		if strings.EqualFold(s, a[0]) {
			return a[1], true
		}
	}
	return "", false
}

// AgeBucket maps an age in years to the ML-1M age bucket code (1, 18, 25,
// 35, 45, 50, 56), the granularity both datasets share.
func AgeBucket(years int) int {
	switch {
	case years < 18:
		return 1
	case years < 25:
		return 18
	case years < 35:
		return 25
	case years < 45:
		return 35
	case years < 50:
		return 45
	case years < 56:
		return 50
	default:
		return 56
	}
}
