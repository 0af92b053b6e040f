//! `country`: Tavily takes a lowercase English country name from its own list; clients send an
//! ISO 3166-1 alpha-2 code.
//!
//! The list is the `country` enum of Tavily's official MCP server (166 names, the same as the
//! API reference's "Available options", whose first value, `afghanistan`, is also its example):
//! <https://github.com/tavily-ai/tavily-mcp/blob/bf78c130a460f3f27049e60ace55c1d5b05fd3b7/src/index.ts#L226-L231>,
//! <https://docs.tavily.com/documentation/api-reference/endpoint/search#body-country>.
//! The code of each name is its ISO 3166-1 alpha-2 code (`congo` is the Republic of the Congo,
//! `CG`; the Democratic Republic, `CD`, is not on Tavily's list).

/// (ISO 3166-1 alpha-2 code in lower case, Tavily's name), sorted by name as Tavily lists them.
const COUNTRIES: [(&str, &str); 166] = [
    ("af", "afghanistan"),
    ("al", "albania"),
    ("dz", "algeria"),
    ("ad", "andorra"),
    ("ao", "angola"),
    ("ar", "argentina"),
    ("am", "armenia"),
    ("au", "australia"),
    ("at", "austria"),
    ("az", "azerbaijan"),
    ("bs", "bahamas"),
    ("bh", "bahrain"),
    ("bd", "bangladesh"),
    ("bb", "barbados"),
    ("by", "belarus"),
    ("be", "belgium"),
    ("bz", "belize"),
    ("bj", "benin"),
    ("bt", "bhutan"),
    ("bo", "bolivia"),
    ("ba", "bosnia and herzegovina"),
    ("bw", "botswana"),
    ("br", "brazil"),
    ("bn", "brunei"),
    ("bg", "bulgaria"),
    ("bf", "burkina faso"),
    ("bi", "burundi"),
    ("kh", "cambodia"),
    ("cm", "cameroon"),
    ("ca", "canada"),
    ("cv", "cape verde"),
    ("cf", "central african republic"),
    ("td", "chad"),
    ("cl", "chile"),
    ("cn", "china"),
    ("co", "colombia"),
    ("km", "comoros"),
    ("cg", "congo"),
    ("cr", "costa rica"),
    ("hr", "croatia"),
    ("cu", "cuba"),
    ("cy", "cyprus"),
    ("cz", "czech republic"),
    ("dk", "denmark"),
    ("dj", "djibouti"),
    ("do", "dominican republic"),
    ("ec", "ecuador"),
    ("eg", "egypt"),
    ("sv", "el salvador"),
    ("gq", "equatorial guinea"),
    ("er", "eritrea"),
    ("ee", "estonia"),
    ("et", "ethiopia"),
    ("fj", "fiji"),
    ("fi", "finland"),
    ("fr", "france"),
    ("ga", "gabon"),
    ("gm", "gambia"),
    ("ge", "georgia"),
    ("de", "germany"),
    ("gh", "ghana"),
    ("gr", "greece"),
    ("gt", "guatemala"),
    ("gn", "guinea"),
    ("ht", "haiti"),
    ("hn", "honduras"),
    ("hu", "hungary"),
    ("is", "iceland"),
    ("in", "india"),
    ("id", "indonesia"),
    ("ir", "iran"),
    ("iq", "iraq"),
    ("ie", "ireland"),
    ("il", "israel"),
    ("it", "italy"),
    ("jm", "jamaica"),
    ("jp", "japan"),
    ("jo", "jordan"),
    ("kz", "kazakhstan"),
    ("ke", "kenya"),
    ("kw", "kuwait"),
    ("kg", "kyrgyzstan"),
    ("lv", "latvia"),
    ("lb", "lebanon"),
    ("ls", "lesotho"),
    ("lr", "liberia"),
    ("ly", "libya"),
    ("li", "liechtenstein"),
    ("lt", "lithuania"),
    ("lu", "luxembourg"),
    ("mg", "madagascar"),
    ("mw", "malawi"),
    ("my", "malaysia"),
    ("mv", "maldives"),
    ("ml", "mali"),
    ("mt", "malta"),
    ("mr", "mauritania"),
    ("mu", "mauritius"),
    ("mx", "mexico"),
    ("md", "moldova"),
    ("mc", "monaco"),
    ("mn", "mongolia"),
    ("me", "montenegro"),
    ("ma", "morocco"),
    ("mz", "mozambique"),
    ("mm", "myanmar"),
    ("na", "namibia"),
    ("np", "nepal"),
    ("nl", "netherlands"),
    ("nz", "new zealand"),
    ("ni", "nicaragua"),
    ("ne", "niger"),
    ("ng", "nigeria"),
    ("kp", "north korea"),
    ("mk", "north macedonia"),
    ("no", "norway"),
    ("om", "oman"),
    ("pk", "pakistan"),
    ("pa", "panama"),
    ("pg", "papua new guinea"),
    ("py", "paraguay"),
    ("pe", "peru"),
    ("ph", "philippines"),
    ("pl", "poland"),
    ("pt", "portugal"),
    ("qa", "qatar"),
    ("ro", "romania"),
    ("ru", "russia"),
    ("rw", "rwanda"),
    ("sa", "saudi arabia"),
    ("sn", "senegal"),
    ("rs", "serbia"),
    ("sg", "singapore"),
    ("sk", "slovakia"),
    ("si", "slovenia"),
    ("so", "somalia"),
    ("za", "south africa"),
    ("kr", "south korea"),
    ("ss", "south sudan"),
    ("es", "spain"),
    ("lk", "sri lanka"),
    ("sd", "sudan"),
    ("se", "sweden"),
    ("ch", "switzerland"),
    ("sy", "syria"),
    ("tw", "taiwan"),
    ("tj", "tajikistan"),
    ("tz", "tanzania"),
    ("th", "thailand"),
    ("tg", "togo"),
    ("tt", "trinidad and tobago"),
    ("tn", "tunisia"),
    ("tr", "turkey"),
    ("tm", "turkmenistan"),
    ("ug", "uganda"),
    ("ua", "ukraine"),
    ("ae", "united arab emirates"),
    ("gb", "united kingdom"),
    ("us", "united states"),
    ("uy", "uruguay"),
    ("uz", "uzbekistan"),
    ("ve", "venezuela"),
    ("vn", "vietnam"),
    ("ye", "yemen"),
    ("zm", "zambia"),
    ("zw", "zimbabwe"),
];

/// Tavily's name for `value`: an ISO 3166-1 alpha-2 code (any case; `UK`, which ISO 3166-1
/// reserves for the United Kingdom, too), or a name on Tavily's list (any case). `None` for
/// anything else.
pub(crate) fn tavily_name(value: &str) -> Option<&'static str> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("uk") {
        return Some("united kingdom");
    }
    let by_code = |&(code, _): &(&str, &str)| value.eq_ignore_ascii_case(code);
    let by_name = |&(_, name): &(&str, &str)| value.eq_ignore_ascii_case(name);
    let found = if value.len() == 2 {
        COUNTRIES.iter().find(|c| by_code(c))
    } else {
        COUNTRIES.iter().find(|c| by_name(c))
    };
    found.map(|&(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_tavilys_list_with_one_code_each() {
        let mut names: Vec<&str> = COUNTRIES.iter().map(|c| c.1).collect();
        assert!(names.is_sorted(), "sorted as Tavily lists them");
        names.dedup();
        assert_eq!(names.len(), COUNTRIES.len(), "a name twice");
        let mut codes: Vec<&str> = COUNTRIES.iter().map(|c| c.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), COUNTRIES.len(), "a code twice");
        for (code, name) in COUNTRIES {
            assert!(
                code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase()),
                "{code}"
            );
            assert_eq!(name, name.to_lowercase(), "Tavily's names are lower case");
            assert_eq!(name, name.trim());
        }
    }

    #[test]
    fn codes_and_names_map_to_tavilys_names() {
        for (given, expected) in [
            ("US", Some("united states")),
            ("us", Some("united states")),
            (" de ", Some("germany")),
            ("GB", Some("united kingdom")),
            ("UK", Some("united kingdom")),
            ("KR", Some("south korea")),
            ("KP", Some("north korea")),
            ("CZ", Some("czech republic")),
            ("CG", Some("congo")),
            ("united states", Some("united states")),
            ("United States", Some("united states")),
            ("BOSNIA AND HERZEGOVINA", Some("bosnia and herzegovina")),
            // Not on Tavily's list, or not a country.
            ("CD", None),
            ("HK", None),
            ("XX", None),
            ("usa", None),
            ("United States of America", None),
            ("", None),
        ] {
            assert_eq!(tavily_name(given), expected, "{given:?}");
        }
    }
}
