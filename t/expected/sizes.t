diff: base revision 1 -> result revision 2, 12 items
item grow: 10 -> 30 bytes
  Area    0x000000000000000a       20 6d6f726520627974
  Cont    +8                        8 65732c207477656e
  Cont    +16                       4 74792121
end grow: resized, CRC32 eec9fbac -> b8e8dcd0, 3 entries, 1 spots, 20 bytes, unjudged
item shrink: 30 -> 10 bytes
  Area    0x000000000000000a       20 66e243b1f365b93f
  Cont    +8                        8 7b50b536fa851b22
  Cont    +16                       4 fd345924
end shrink: resized, CRC32 f0d9074d -> 64d6398b, 3 entries, 1 spots, 20 bytes, unjudged
item zgrow: 10 -> 16 bytes
end zgrow: resized, CRC32 af97a704 -> 1ae76373, 0 entries, 0 spots, 0 bytes, unjudged
item one: 1 -> 1 bytes
  Data    0x0000000000000000        1 ff
end one: changed, CRC32 6b643b84 -> 4666d409, 1 entries, 1 spots, 1 bytes, unjudged
item onesame: 1 -> 1 bytes
end onesame: same, CRC32 3e611dab -> 3e611dab, 0 entries, 0 spots, 0 bytes, unjudged
item empty: 0 -> 0 bytes
end empty: same, CRC32 00000000 -> 00000000, 0 entries, 0 spots, 0 bytes, unjudged
item emptyadd: 0 -> 0 bytes
end emptyadd: added, CRC32 00000000 -> 00000000, 0 entries, 0 spots, 0 bytes, unjudged
item fill: 0 -> 12 bytes
  Area    0x0000000000000000       12 66726f6d206e6f74
  Cont    +8                        4 68696e67
end fill: resized, CRC32 00000000 -> d107ee44, 2 entries, 1 spots, 12 bytes, unjudged
item drain: 10 -> 0 bytes
  Area    0x0000000000000000       10 746f206e6f746869
  Cont    +8                        2 6e67
end drain: resized, CRC32 d9c1301e -> 00000000, 2 entries, 1 spots, 10 bytes, unjudged
item added: 0 -> 8 bytes
  Data    0x0000000000000000        8 6e6577206974656d
end added: added, CRC32 00000000 -> 9074e6dd, 1 entries, 1 spots, 8 bytes, unjudged
item emptygone: 0 -> 0 bytes
end emptygone: removed, CRC32 00000000 -> 00000000, 0 entries, 0 spots, 0 bytes, unjudged
item gone: 8 -> 0 bytes
  Data    0x0000000000000000        8 6f6c64206974656d
end gone: removed, CRC32 4c04d3a5 -> 00000000, 1 entries, 1 spots, 8 bytes, unjudged
