package server

import (
	"errors"
	"math"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/towerrecall/towerrecall/internal/recall"
)

// appendRecall appends the /recall answer for res: the bytes json.Marshal
// writes for newRecallResponse(res) (TestAppendRecallMatchesMarshal), with
// json/v2's own string and number formatting but without reflection, which
// is costly on the hot path (docs/experiments.md).
func appendRecall(dst []byte, res recall.Result) ([]byte, error) {
	var err error
	dst = append(dst, `{"model_version":`...)
	if dst, err = appendString(dst, res.ModelVersion); err != nil {
		return nil, err
	}
	dst = append(dst, `,"backend":`...)
	if dst, err = appendString(dst, res.Backend); err != nil {
		return nil, err
	}
	dst = append(dst, `,"known_user":`...)
	dst = strconv.AppendBool(dst, res.KnownUser)
	dst = append(dst, `,"user":`...)
	if dst, err = appendUser(dst, newUserJSON(res.User)); err != nil {
		return nil, err
	}
	dst = append(dst, `,"items":[`...)
	for i, it := range res.Items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"movie_id":`...)
		dst = strconv.AppendInt(dst, int64(it.MovieID), 10)
		dst = append(dst, `,"title":`...)
		if dst, err = appendString(dst, it.Title); err != nil {
			return nil, err
		}
		dst = append(dst, `,"genres":`...)
		if dst, err = appendStrings(dst, it.Genres); err != nil {
			return nil, err
		}
		if it.Year != 0 {
			dst = append(dst, `,"year":`...)
			dst = strconv.AppendInt(dst, int64(it.Year), 10)
		}
		if math.IsNaN(float64(it.Score)) || math.IsInf(float64(it.Score), 0) {
			return nil, errors.New("server: a score is not finite")
		}
		dst = append(dst, `,"score":`...)
		dst = jsontext.AppendFloat(dst, float64(it.Score), 32)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if res.NextOffset != 0 {
		dst = append(dst, `,"next_offset":`...)
		dst = strconv.AppendInt(dst, int64(res.NextOffset), 10)
	}
	return append(dst, '}'), nil
}

// appendUser appends u as json.Marshal does: omitzero members left out,
// nil slices as [].
func appendUser(dst []byte, u userJSON) ([]byte, error) {
	dst = append(dst, '{')
	if u.UserID != 0 {
		dst = strconv.AppendInt(append(dst, `"user_id":`...), int64(u.UserID), 10)
		dst = append(dst, ',')
	}
	var err error
	if u.Gender != "" {
		if dst, err = appendString(append(dst, `"gender":`...), u.Gender); err != nil {
			return nil, err
		}
		dst = append(dst, ',')
	}
	if u.Age != 0 {
		dst = strconv.AppendInt(append(dst, `"age":`...), int64(u.Age), 10)
		dst = append(dst, ',')
	}
	if u.Occupation != "" {
		if dst, err = appendString(append(dst, `"occupation":`...), u.Occupation); err != nil {
			return nil, err
		}
		dst = append(dst, ',')
	}
	if u.Zip != "" {
		if dst, err = appendString(append(dst, `"zip":`...), u.Zip); err != nil {
			return nil, err
		}
		dst = append(dst, ',')
	}
	if dst, err = appendStrings(append(dst, `"stored_features":`...), u.StoredFeatures); err != nil {
		return nil, err
	}
	dst = strconv.AppendInt(append(dst, `,"history_movies":`...), int64(u.HistoryMovies), 10)
	dst = append(dst, `,"unknown_recent_movie_ids":[`...)
	for i, id := range u.UnknownRecentMovieIDs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(id), 10)
	}
	return append(dst, "]}"...), nil
}

// appendStrings appends ss as a JSON array ([] for nil, as json/v2).
func appendStrings(dst []byte, ss []string) ([]byte, error) {
	var err error
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendString(dst, s); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

// appendString quotes s as json/v2 does. Printable ASCII without '"' or
// '\' (nearly every title and genre) is copied as it is; anything else goes
// through jsontext.AppendQuote, which escapes it and refuses invalid UTF-8.
func appendString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return jsontext.AppendQuote(dst, s)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}
