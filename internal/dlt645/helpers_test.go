package dlt645

import (
	"encoding/hex"
	"strings"
)

func hexOf(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func unhexNoT(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err) // test helper on literal input
	}
	return b
}
