import { cleanStrings, cleanText } from './text';

const ESC = '\u001b';

describe('cleanText', () => {
  it.each([
    ['colour', `${ESC}[31mred${ESC}[0m`, 'red'],
    ['cursor moves and a screen clear', `a${ESC}[2J${ESC}[H${ESC}[1Ab`, 'ab'],
    ['an OSC 52 clipboard write ended by BEL', `a${ESC}]52;c;ZWNobyBwd25lZA==\u0007b`, 'ab'],
    ['an OSC 8 hyperlink ended by ST', `${ESC}]8;;https://evil.example.net${ESC}\\link${ESC}]8;;${ESC}\\`, 'link'],
    ['an 8-bit CSI', 'a\u009b31mb', 'ab'],
    ['a lone ESC, NUL, DEL and C1 controls', `a${ESC}\u0000\u007f\u0085\u009fb`, 'ab'],
    ['a right-to-left override', 'invoice\u202Efdp.exe', 'invoicefdp.exe'],
    ['isolates, embeddings and marks', '\u2066a\u2069\u202Ab\u202C\u200Ec\u200F\u061C', 'abc'],
    ['line breaks and tabs in one-line text', 'a\nb\tc\r\nd\u2028e', 'a b c d e'],
  ])('removes %s', (_, input, expected) => {
    expect(cleanText(input)).toBe(expected);
  });

  it('keeps text without controls as it is', () => {
    expect(cleanText('Toys API – Spielzeug 玩具 🧸 (ltr) שלום')).toBe('Toys API – Spielzeug 玩具 🧸 (ltr) שלום');
  });

  it('multi-line text keeps LF and TAB, and ends lines with LF', () => {
    expect(cleanText(`one${ESC}[31m\r\ntwo\rthree\n\tfour\u0000`, { multiline: true })).toBe('one\ntwo\nthree\n\tfour');
  });
});

describe('cleanStrings', () => {
  it('cleans every string and key of a JSON value; description and message keep their lines', () => {
    expect(
      cleanStrings({
        [`na${ESC}[1mme`]: `a\nb${ESC}[0m`,
        description: `x\ny\u202E`,
        plans: [{ tier: 'gold\u202E', description: 'p\nq', limits: { daily: 1 } }],
        conditions: [{ message: 'm\r\nn', ready: true, none: null }],
      }),
    ).toStrictEqual({
      name: 'a b',
      description: 'x\ny',
      plans: [{ tier: 'gold', description: 'p\nq', limits: { daily: 1 } }],
      conditions: [{ message: 'm\nn', ready: true, none: null }],
    });
  });
});
