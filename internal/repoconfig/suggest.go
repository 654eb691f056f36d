package repoconfig

import (
	"fmt"
	"strings"
)

// didYouMean returns a hint naming the candidate closest to word, or ""
// when none is close enough to be a likely typo. The hint starts with
// "; " so it can be appended to a message.
func didYouMean(word string, candidates []string) string {
	// Words longer than any key are not typos of one, and the distance
	// table below grows with the square of the length.
	if len(word) > 32 {
		return ""
	}
	lower := strings.ToLower(word)
	best, bestDist := "", 0
	for _, c := range candidates {
		d := editDistance(lower, c)
		if d <= typoBudget(c) && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}

	return fmt.Sprintf("; did you mean %q?", best)
}

// typoBudget is how many edits still look like a typo of key: short keys
// such as "on" would otherwise match almost anything.
func typoBudget(key string) int {
	if len(key) <= 3 {
		return 1
	}

	return 2
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two neighbours each
// cost one, so "imgae" is one edit from "image".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}

	return d[len(ra)][len(rb)]
}
