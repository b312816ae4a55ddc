/// A number as an operator writes it: digits with an optional sign, point and exponent (`0.8`, `.5`, `2.`, `1e3`,
/// `-1`). `Double(_:)`, which the argument parser and swift-configuration convert text with, also takes hexadecimal
/// (`0x10` is 16, `0x1p-1` is 0.5), `inf` and `nan`: no rate, share, threshold or timeout of the project means those,
/// and a value that reads as another number than it looks is refused instead (the companion tool's fractional flags,
/// the daemon's fractional settings).
public enum DecimalSyntax {
    /// Whether `text` is a decimal number, as a whole (no space around it).
    public static func isDecimal(_ text: String) -> Bool {
        text.wholeMatch(of: #/[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?/#) != nil
    }

    /// Whether `text` is a whole number in decimal digits, with an optional sign and no leading zero (`14`, `-3`,
    /// `0`; not `014`, `1:30`, `0x10`, `1_000`, `5.0`).
    public static func isWholeNumber(_ text: String) -> Bool {
        text.wholeMatch(of: #/[+-]?(0|[1-9][0-9]*)/#) != nil
    }

    /// Whether `text` holds an ASCII digit anywhere: what an operator meant as a number, whatever else it holds.
    public static func containsDigit(_ text: String) -> Bool {
        text.utf8.contains { $0 >= 0x30 && $0 <= 0x39 }
    }
}
