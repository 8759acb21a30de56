// Package movielens reads the MovieLens datasets (ML-1M and ML-100K layouts)
// into one uniform in-memory form. It is the first step of the data flow:
// files → movielens → feature → tower/train → eval/artifact.
//
// Values are normalised at this boundary so that later steps never see a
// dataset's private encoding: ages are years (ML-1M bucket codes are kept as
// the lower bound of their bucket), occupations are canonical names (see
// Occupations), genders are "F" or "M", titles are UTF-8.
package movielens

// UserID is a user's external id as it appears in the dataset files.
type UserID int32

// MovieID is a movie's external id as it appears in the dataset files.
type MovieID int32

// Layout names the file layout of a MovieLens dataset directory.
type Layout string

// The supported layouts.
const (
	LayoutML1M   Layout = "ml-1m"
	LayoutML100K Layout = "ml-100k"
)

// User is one row of users.dat / u.user.
type User struct {
	ID         UserID
	Gender     string // "F" or "M"
	Age        int    // years; for ML-1M the lower bound of the bucket (1 means under 18)
	Occupation string // canonical name, one of Occupations
	Zip        string // as written in the file
}

// Movie is one row of movies.dat / u.item.
type Movie struct {
	ID     MovieID
	Title  string   // UTF-8, including the "(1995)" suffix as in the file
	Year   int      // release year parsed from the title (or the release date), 0 if unknown
	Genres []string // every genre of the movie, in file order
}

// Rating is one row of ratings.dat / u.data or of a split file.
type Rating struct {
	User  UserID
	Movie MovieID
	Value float32 // 1..5
	Time  int64   // unix seconds
}

// Dataset is a parsed MovieLens directory.
type Dataset struct {
	Layout  Layout
	Users   []User   // sorted by ID
	Movies  []Movie  // sorted by ID
	Ratings []Rating // file order
}

// Occupations lists the canonical occupation names: the 21 names of the
// ML-1M README, indexed by their ML-1M code.
var occupationNames = [...]string{
	"other", "academic/educator", "artist", "clerical/admin", "college/grad student",
	"customer service", "doctor/health care", "executive/managerial", "farmer",
	"homemaker", "K-12 student", "lawyer", "programmer", "retired", "sales/marketing",
	"scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
	"unemployed", "writer",
}

// Occupations returns the canonical occupation names, indexed by ML-1M code.
func Occupations() []string {
	out := make([]string, len(occupationNames))
	copy(out, occupationNames[:])
	return out
}

// OccupationName returns the canonical occupation name spelt exactly as
// b, or "" if b is not one. It does not copy b.
func OccupationName(b []byte) string {
	for _, n := range occupationNames {
		if string(b) == n {
			return n
		}
	}
	return ""
}

// OccupationByCode returns the canonical name of an ML-1M occupation code.
func OccupationByCode(code int) (string, bool) {
	if code < 0 || code >= len(occupationNames) {
		return "", false
	}
	return occupationNames[code], true
}
