//! A reproducible pseudo-random source for robustness tests (no dependency).

/// xorshift64*: reproducible, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn text(&mut self, alphabet: &[u8], max: usize) -> String {
        let n = (self.next() as usize) % (max + 1);
        (0..n)
            .map(|_| alphabet[(self.next() as usize) % alphabet.len()] as char)
            .collect()
    }
    /// Flips, inserts and deletes a few bytes of a valid input.
    pub fn mutate(&mut self, valid: &[u8]) -> Vec<u8> {
        let mut v = valid.to_vec();
        for _ in 0..(1 + self.next() % 4) {
            if v.is_empty() {
                v.push(self.next() as u8);
                continue;
            }
            let i = (self.next() as usize) % v.len();
            match self.next() % 3 {
                0 => v[i] ^= 1 << (self.next() % 8),
                1 => v.insert(i, self.next() as u8),
                _ => {
                    v.remove(i);
                }
            }
        }
        v
    }
}
