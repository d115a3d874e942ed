package dlt645

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReadReply(t *testing.T) {
	meter := mustAddr(t, "000000000001")
	other := mustAddr(t, "000000000002")
	req07 := ReadRequest(V2007, meter, 0x00010000)
	req97 := ReadRequest(V1997, meter, 0x9010)
	value := []byte{0x67, 0x45, 0x23, 0x01}

	r, err := ParseReadReply(V2007, req07, ReadResponse(V2007, meter, 0x00010000, value, false))
	require.NoError(t, err)
	assert.Equal(t, ReadReply{DI: 0x00010000, Value: value}, r)

	r, err = ParseReadReply(V2007, req07, ReadResponse(V2007, meter, 0x00010000, value, true))
	require.NoError(t, err)
	assert.True(t, r.More)

	r, err = ParseReadReply(V2007, req07, ErrorResponse(meter, FuncRead2007, 0x02))
	require.NoError(t, err)
	require.NotNil(t, r.Err)
	assert.Equal(t, ErrorWord(0x02), r.Err.Word)
	assert.Equal(t, "meter error word 02 (no requested data)", r.Err.Error())

	r, err = ParseReadReply(V1997, req97, ReadResponse(V1997, meter, 0x9010, value, false))
	require.NoError(t, err)
	assert.Equal(t, DI(0x9010), r.DI)
	r, err = ParseReadReply(V1997, req97, ErrorResponse(meter, FuncRead1997, 0x02))
	require.NoError(t, err)
	assert.Equal(t, "meter error word 02 (data identifier error)", r.Err.Error())

	// Follow-up with the sequence number.
	fu := FollowUpRequest(V2007, meter, 0x00010000, 3)
	r, err = ParseReadReply(V2007, fu, FollowUpResponse(V2007, meter, 0x00010000, []byte{1, 2}, 3, false))
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2}, r.Value)
	assert.Equal(t, byte(3), r.Seq)
	_, err = ParseReadReply(V2007, fu, FollowUpResponse(V2007, meter, 0x00010000, []byte{1, 2}, 4, false))
	assert.ErrorIs(t, err, ErrUnexpected)
	fu97 := FollowUpRequest(V1997, meter, 0x9010, 1)
	assert.Len(t, fu97.Data, 2, "1997 follow-up has no sequence number")
	r, err = ParseReadReply(V1997, fu97, FollowUpResponse(V1997, meter, 0x9010, []byte{1, 2}, 1, true))
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2}, r.Value)
	assert.True(t, r.More)

	// Not an answer to this request.
	for name, f := range map[string]Frame{
		"other meter":     ReadResponse(V2007, other, 0x00010000, value, false),
		"other DI":        ReadResponse(V2007, meter, 0x00020000, value, false),
		"request echoed":  req07,
		"1997 reply":      ReadResponse(V1997, meter, 0x9010, value, false),
		"short DI":        {Address: meter, Control: 0x91, Data: []byte{0}},
		"error word size": {Address: meter, Control: 0xD1, Data: []byte{1, 2}},
	} {
		_, err := ParseReadReply(V2007, req07, f)
		assert.ErrorIs(t, err, ErrUnexpected, name)
	}
}

func TestAddressReply(t *testing.T) {
	a := mustAddr(t, "123456789012")
	got, err := ParseAddressReply(AddressResponse(a))
	require.NoError(t, err)
	assert.Equal(t, a, got)
	bad := AddressResponse(a)
	bad.Data[0] = 0x13
	_, err = ParseAddressReply(bad)
	assert.ErrorIs(t, err, ErrUnexpected)
}

func TestErrorWordDescribe(t *testing.T) {
	assert.Equal(t, "other error, too many tariffs", ErrorWord(0x41).Describe(V2007))
	assert.Equal(t, "illegal data, password error", ErrorWord(0x05).Describe(V1997))
	assert.Equal(t, "no error bit set", ErrorWord(0).Describe(V2007))
	var me *MeterError
	assert.True(t, errors.As(error(&MeterError{V2007, 2}), &me))
}

func TestParseDI(t *testing.T) {
	d, err := ParseDI(V2007, "0201FF00")
	require.NoError(t, err)
	assert.Equal(t, DI(0x0201FF00), d)
	assert.Equal(t, "0201FF00", d.Format(V2007))
	d, err = ParseDI(V2007, "02 01 01 00")
	require.NoError(t, err)
	assert.Equal(t, DI(0x02010100), d)
	d, err = ParseDI(V1997, "b61f")
	require.NoError(t, err)
	assert.Equal(t, DI(0xB61F), d)
	assert.Equal(t, "B61F", d.Format(V1997))
	for _, bad := range []string{"9010", "0201FF0", "zz010100"} {
		_, err := ParseDI(V2007, bad)
		assert.Error(t, err, bad)
	}
	_, err = ParseDI(V1997, "00010000")
	assert.Error(t, err)
	v, err := ParseVersion("97")
	require.NoError(t, err)
	assert.Equal(t, V1997, v)
	_, err = ParseVersion("2021")
	assert.Error(t, err)
}
