diff: base revision 1 -> result revision 2, 9 items
item r1: 40 -> 40 bytes
  Data    0x0000000000000005        1 01
end r1: changed, CRC32 4a4f9597 -> 85d1825f, 1 entries, 1 spots, 1 bytes, unjudged
item r8: 40 -> 40 bytes
  Data    0x0000000000000003        8 0102030405060708
end r8: changed, CRC32 f222770e -> 2e2ef58d, 1 entries, 1 spots, 8 bytes, unjudged
item r9: 40 -> 40 bytes
  Area    0x0000000000000003        9 0102030405060708
  Cont    +8                        1 09
end r9: changed, CRC32 d36792c2 -> c2b00cc7, 2 entries, 1 spots, 9 bytes, unjudged
item r16: 40 -> 40 bytes
  Area    0x0000000000000000       16 0102030405060708
  Cont    +8                        8 090a0b0c0d0e0f10
end r16: changed, CRC32 e38c7f52 -> 5c4c4d33, 2 entries, 1 spots, 16 bytes, unjudged
item r17: 40 -> 40 bytes
  Area    0x0000000000000017       17 0102030405060708
  Cont    +8                        8 090a0b0c0d0e0f10
  Cont    +16                       1 11
end r17: changed, CRC32 82df07ea -> 3931b722, 3 entries, 1 spots, 17 bytes, unjudged
item r24: 40 -> 40 bytes
  Area    0x0000000000000008       24 0102030405060708
  Cont    +8                        8 090a0b0c0d0e0f10
  Cont    +16                       8 1112131415161718
end r24: changed, CRC32 491a05e0 -> f952f25d, 3 entries, 1 spots, 24 bytes, unjudged
item ends: 40 -> 40 bytes
  Data    0x0000000000000000        1 80
  Data    0x0000000000000027        1 01
end ends: changed, CRC32 7360559a -> ce9b63f8, 2 entries, 2 spots, 2 bytes, unjudged
item gap: 40 -> 40 bytes
  Data    0x000000000000000a        2 0101
  Data    0x000000000000000d        1 02
end gap: changed, CRC32 46928b3b -> c4ed8795, 2 entries, 2 spots, 3 bytes, unjudged
item same: 40 -> 40 bytes
end same: same, CRC32 d8e97555 -> d8e97555, 0 entries, 0 spots, 0 bytes, unjudged
