diff: base revision 1 -> result revision 2, 1 item
item big: 300000 -> 300000 bytes
  Data    0x0000000000000000        1 aa
  Data    0x0000000000000fff        2 0102
  Area    0x0000000000001ffe       12 0102030405060708
  Cont    +8                        4 090a0b0c
  Area    0x000000000003fffc       20 0102030405060708
  Cont    +8                        8 090a0b0c0d0e0f10
  Cont    +16                       4 11121314
  Data    0x00000000000493df        1 ff
end big: changed, CRC32 f6b2e2fb -> 7b96a919, 8 entries, 5 spots, 36 bytes, unjudged
