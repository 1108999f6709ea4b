// Prompts for the suite: different words for every run (no prompt-cache hits between runs), about
// one token per word on the generated models' tokenizer.
const WORDS =
  'the of and to in is it you that he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part over new sound take only little work know place year live me back give most very after thing our just name good sentence man think say great where help through much before line right too mean old any same tell boy follow came want show'.split(
    ' ',
  );

export function promptOf(words: number, run: number): string {
  let a = (run * 2654435761 + 12345) >>> 0;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    a = (Math.imul(a ^ (a >>> 15), 2246822507) + 0x6d2b79f5) >>> 0;
    out.push(WORDS[a % WORDS.length]!);
  }
  return out.join(' ');
}
