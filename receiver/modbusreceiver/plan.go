package modbusreceiver

import (
	"cmp"
	"slices"
)

// block is one read request: a range of one table and the fields it serves.
type block struct {
	table    Table
	start    int   // first register (or bit)
	count    int   // registers (or bits) read
	fields   []int // indices of the fields served, by address
	explicit bool  // configured in requests.blocks: read as given, never split
}

func (b block) end() int { return b.start + b.count }

// planLimits bounds a read.
type planLimits struct {
	maxRegisters int // per read of holding or input registers (≤ 125)
	maxBits      int // per read of coils or discrete inputs (≤ 2000)
	maxGap       int // unused registers (bits) a read may bridge
}

// planHints carry what earlier polls learnt: breakBefore[i] makes field i start a new read (set where
// a merged read had to be split); isolated[i] reads field i alone and never bridges over it (a field
// the device refuses). Either may be nil.
type planHints struct {
	breakBefore []bool
	isolated    []bool
}

var tableOrder = map[Table]int{TableHolding: 0, TableInput: 1, TableCoil: 2, TableDiscrete: 3}

// plan groups fields into the fewest reads such that each read stays within the protocol and device
// limits and bridges gaps of at most maxGap. Fields are taken in address order and each read grows
// greedily, which is optimal here: any run of fields that fits in one read still fits when shortened.
func plan(fields []fieldSpec, lim planLimits, hints planHints) []block {
	idx := make([]int, len(fields))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		fa, fb := &fields[a], &fields[b]
		if c := cmp.Compare(tableOrder[fa.table], tableOrder[fb.table]); c != 0 {
			return c
		}
		if c := cmp.Compare(fa.address, fb.address); c != 0 {
			return c
		}
		return cmp.Compare(fa.count, fb.count)
	})
	flag := func(s []bool, i int) bool { return s != nil && s[i] }
	var out []block
	var cur *block
	for _, i := range idx {
		f := &fields[i]
		max := lim.maxRegisters
		if f.table.bits() {
			max = lim.maxBits
		}
		fend := f.address + f.count
		isolated := flag(hints.isolated, i)
		if cur != nil && !isolated && !flag(hints.breakBefore, i) && cur.table == f.table {
			end := cur.end()
			newEnd := max2(end, fend)
			if f.address-end <= lim.maxGap && newEnd-cur.start <= max {
				cur.count = newEnd - cur.start
				cur.fields = append(cur.fields, i)
				continue
			}
		}
		out = append(out, block{table: f.table, start: f.address, count: f.count, fields: []int{i}})
		cur = &out[len(out)-1]
		if isolated {
			cur = nil
		}
	}
	return out
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// splitFields divides the fields of a block into two halves by address, for isolating an exception.
func splitFields(fields []int) (left, right []int) {
	h := len(fields) / 2
	return fields[:h], fields[h:]
}

// span returns the block that reads exactly the given fields (sorted by address).
func span(fields []fieldSpec, ids []int) block {
	f0 := &fields[ids[0]]
	b := block{table: f0.table, start: f0.address, fields: ids}
	end := f0.address + f0.count
	for _, i := range ids[1:] {
		if e := fields[i].address + fields[i].count; e > end {
			end = e
		}
	}
	b.count = end - b.start
	return b
}

// planBlocks serves the fields from the device's explicit blocks, as given: each field is read by the
// block that holds it (configuration checks there is one); a block that serves no field (all of its
// fields excluded) is not read.
func planBlocks(fields []fieldSpec, blocks []blockSpec) []block {
	served := make([][]int, len(blocks))
	for i := range fields {
		if bi := blockOf(blocks, &fields[i]); bi >= 0 {
			served[bi] = append(served[bi], i)
		}
	}
	var out []block
	for bi, b := range blocks {
		ids := served[bi]
		if len(ids) == 0 {
			continue
		}
		slices.SortStableFunc(ids, func(x, y int) int { return cmp.Compare(fields[x].address, fields[y].address) })
		out = append(out, block{table: b.table, start: b.start, count: b.count, fields: ids, explicit: true})
	}
	return out
}
