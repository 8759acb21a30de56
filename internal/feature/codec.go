package feature

import "strconv"

// UserCodec encodes users exactly as Encoder.UserIndexes does, with tables
// in place of the string maps where the values allow: decimal user ids
// index a slice, gender and age (in years) are precomputed. Serving builds
// one per loaded model; a request then hashes at most the occupation and
// the zip prefix. The user-id map it replaces has one entry per training
// user and is rarely in cache under load.
type UserCodec struct {
	enc    *Encoder
	fields []Field

	// ids[n] is the index of the user id written as the decimal n (OOV
	// when not in the vocabulary); nil when some id in the vocabulary is
	// not a canonical decimal or the ids are too large for a table.
	ids []int32
	// The gender values a client may send: "F", "M", "" (unknown).
	female, male, noGender int32
	// ages[y] is the index of age y years, 0 ≤ y < len(ages).
	ages [maxTableAge + 1]int32
}

// maxTableAge is the largest age in years UserCodec precomputes; older
// ages take Encoder's path.
const maxTableAge = 150

// maxTableID bounds the user-id table: 4 Mi ids, 16 MiB at most.
const maxTableID = 1 << 22

// NewUserCodec compiles e's user encoding.
func NewUserCodec(e *Encoder) *UserCodec {
	c := &UserCodec{enc: e, fields: e.UserFields}
	if v := e.Vocabs[UserIDField]; v != nil {
		c.ids = idTable(v)
	}
	if v := e.Vocabs[GenderField]; v != nil {
		c.female, c.male, c.noGender = v.Lookup("F"), v.Lookup("M"), v.Lookup("")
	}
	if v := e.Vocabs[AgeField]; v != nil {
		for y := range c.ages {
			c.ages[y] = v.Lookup(AgeValue(y))
		}
	}
	return c
}

// idTable returns the slice form of an id vocabulary whose values are all
// canonical decimals below maxTableID (the form training writes them in),
// else nil.
func idTable(v *Vocab) []int32 {
	hi := 0
	for _, s := range v.values {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= maxTableID || strconv.Itoa(n) != s {
			return nil
		}
		hi = max(hi, n)
	}
	t := make([]int32, hi+1)
	for i, s := range v.values {
		n, _ := strconv.Atoi(s)
		t[n] = int32(i + 1)
	}
	return t
}

// Indexes appends u's index for each user field, as Encoder.UserIndexes.
func (c *UserCodec) Indexes(dst []int32, u UserInput) []int32 {
	dst = dst[:0]
	for _, f := range c.fields {
		dst = append(dst, c.value(f, u))
	}
	return dst
}

func (c *UserCodec) value(f Field, u UserInput) int32 {
	switch f {
	case UserIDField:
		if c.ids != nil {
			if u.UserID <= 0 || int(u.UserID) >= len(c.ids) {
				return OOV
			}
			return c.ids[u.UserID]
		}
	case GenderField:
		switch u.Gender {
		case "F":
			return c.female
		case "M":
			return c.male
		case "":
			return c.noGender
		}
	case AgeField:
		if u.Age >= 0 && u.Age <= maxTableAge {
			return c.ages[u.Age]
		}
	}
	return c.enc.userValue(f, u)
}
