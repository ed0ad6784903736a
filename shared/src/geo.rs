//! Offline geolocation: the country of an address from an embedded table (no network at build or
//! run time; data licence in `shared/geo/NOTICE`), an optional city-level MMDB file for
//! coordinates, and lower bounds on the distance between two places.
//!
//! With country precision only, a place is its country's bounding box and distances are the
//! shortest distance between boxes: a lower bound, so that country-level data never inflates a
//! travel speed (a user crossing from Germany to Austria is 0 km apart, not 500).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const RANGES_GZ: &[u8] = include_bytes!("../geo/country-ranges.bin.gz");
const BOXES_TSV: &str = include_str!("../geo/country-boxes.tsv");
/// The mean Earth radius.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// An ISO 3166-1 alpha-2 country code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses a two-letter code (any case).
    pub fn parse(code: &str) -> Option<Country> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// A country from its English name (`"United States"`) or its code.
    pub fn from_name(name: &str) -> Option<Country> {
        let lower = name.trim().to_lowercase();
        table().names.get(&lower).copied().or_else(|| match lower.as_str() {
            "united states of america" | "usa" => Country::parse("US"),
            "russian federation" => Country::parse("RU"),
            "south korea" | "republic of korea" | "korea, republic of" => Country::parse("KR"),
            _ => Country::parse(name.trim()),
        })
    }

    /// The ISO 3166-1 alpha-2 code.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Country::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a country code: {s:?}")))
    }
}

/// A coordinate with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Radius (km) within which the true location lies.
    pub radius_km: f64,
}

/// Where an address (or an Okta sign-in) is, as precisely as known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// The country.
    pub country: Option<Country>,
    /// The city, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Coordinates, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Point>,
}

#[derive(Debug, Clone, Copy)]
struct GeoBox {
    south: f64,
    north: f64,
    west: f64,
    east: f64,
}

struct CountryTable {
    v4_starts: Vec<u32>,
    v4_codes: Vec<[u8; 2]>,
    v6_starts: Vec<u128>,
    v6_codes: Vec<[u8; 2]>,
    boxes: HashMap<Country, GeoBox>,
    /// Lower-case English names (as Okta's `geographicalContext.country` gives them) → code.
    names: HashMap<String, Country>,
}

fn table() -> &'static CountryTable {
    static TABLE: OnceLock<CountryTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut raw = Vec::with_capacity(8 << 20);
        // The table is compiled in and checked by the tests: failing to read it is a build defect.
        flate2::read::GzDecoder::new(RANGES_GZ)
            .read_to_end(&mut raw)
            .expect("embedded country table is valid gzip");
        decode_table(&raw).expect("embedded country table is well formed")
    })
}

fn decode_table(raw: &[u8]) -> Option<CountryTable> {
    let mut rest = raw.strip_prefix(b"IDCGEO1\n")?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let n4 = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    let (mut v4_starts, mut v4_codes) = (Vec::with_capacity(n4), Vec::with_capacity(n4));
    for _ in 0..n4 {
        v4_starts.push(u32::from_be_bytes(take(4)?.try_into().ok()?));
        v4_codes.push(take(2)?.try_into().ok()?);
    }
    let n6 = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    let (mut v6_starts, mut v6_codes) = (Vec::with_capacity(n6), Vec::with_capacity(n6));
    for _ in 0..n6 {
        v6_starts.push(u128::from_be_bytes(take(16)?.try_into().ok()?));
        v6_codes.push(take(2)?.try_into().ok()?);
    }
    let mut boxes = HashMap::new();
    let mut names = HashMap::new();
    for line in BOXES_TSV.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let [cc, south, north, west, east, name] = f[..] else { continue };
        let Some(cc) = Country::parse(cc) else { continue };
        names.insert(name.to_lowercase(), cc);
        let edges: Option<Vec<f64>> =
            [south, north, west, east].iter().map(|v| v.parse().ok()).collect();
        if let Some([south, north, west, east]) = edges.as_deref() {
            boxes.insert(cc, GeoBox { south: *south, north: *north, west: *west, east: *east });
        }
    }
    Some(CountryTable { v4_starts, v4_codes, v6_starts, v6_codes, boxes, names })
}

fn range_lookup<T: Ord + Copy>(starts: &[T], codes: &[[u8; 2]], ip: T) -> Option<Country> {
    let i = starts.partition_point(|s| *s <= ip).checked_sub(1)?;
    let code = codes[i];
    (code != *b"--").then_some(Country(code))
}

/// The country of an address from the embedded table; `None` for private, reserved and
/// unassigned addresses.
pub fn country_of(ip: IpAddr) -> Option<Country> {
    if !is_global(ip) {
        return None;
    }
    let t = table();
    match ip {
        IpAddr::V4(v4) => range_lookup(&t.v4_starts, &t.v4_codes, u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => country_of(IpAddr::V4(v4)),
            None => range_lookup(&t.v6_starts, &t.v6_codes, u128::from(v6)),
        },
    }
}

/// Whether an address can be located at all: private, shared (CGNAT), loopback, link-local,
/// documentation, multicast and unique-local addresses cannot (the source data maps some of them
/// to whichever network announced them).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_global(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// A city-level MMDB file (GeoLite2-City / DB-IP City Lite layout), opened by the user.
pub struct CityDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Deserialize)]
struct MmdbCity<'a> {
    #[serde(borrow, default)]
    city: Option<MmdbNames<'a>>,
    #[serde(borrow, default)]
    country: Option<MmdbCountry<'a>>,
    #[serde(default)]
    location: Option<MmdbLocation>,
}

#[derive(Deserialize)]
struct MmdbNames<'a> {
    #[serde(borrow, default)]
    names: HashMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
struct MmdbCountry<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct MmdbLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<u16>,
}

/// A city database that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the city database {path}: {reason}")]
pub struct CityDbError {
    path: String,
    reason: String,
}

impl CityDb {
    /// Opens a MaxMind-format city database (read into memory).
    pub fn open(path: &Path) -> Result<CityDb, CityDbError> {
        maxminddb::Reader::open_readfile(path)
            .map(|reader| CityDb { reader })
            .map_err(|e| CityDbError { path: path.display().to_string(), reason: e.to_string() })
    }

    fn lookup(&self, ip: IpAddr) -> Option<Place> {
        let found = self.reader.lookup(ip).ok()?;
        let city: MmdbCity = found.decode().ok()??;
        let point = city.location.as_ref().and_then(|l| {
            Some(Point {
                lat: l.latitude?,
                lon: l.longitude?,
                radius_km: f64::from(l.accuracy_radius.unwrap_or(100)),
            })
        });
        Some(Place {
            country: city.country.and_then(|c| c.iso_code).and_then(Country::parse),
            city: city.city.and_then(|c| c.names.get("en").map(|n| (*n).to_owned())),
            point,
        })
    }
}

/// Geolocation: the embedded country table, refined by a city database when one is given.
#[derive(Default)]
pub struct Geo {
    city: Option<CityDb>,
}

impl fmt::Debug for Geo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Geo").field("city_db", &self.city.is_some()).finish()
    }
}

impl Geo {
    /// Locates with this city database, and the bundled country ranges as fallback.
    pub fn with_city_db(city: CityDb) -> Geo {
        Geo { city: Some(city) }
    }

    /// Loads the embedded table now (≈ 50 ms) rather than on the first lookup.
    pub fn warm(&self) {
        table();
    }

    /// Where an address is, as far as the bundled table (and the city database) know.
    pub fn locate(&self, ip: IpAddr) -> Place {
        let country = country_of(ip);
        match self.city.as_ref().and_then(|c| c.lookup(ip)) {
            Some(mut place) => {
                place.country = place.country.or(country);
                place
            }
            None => Place { country, city: None, point: None },
        }
    }
}

/// Great-circle distance (km) between two coordinates.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

fn box_of(place: &Place) -> Option<GeoBox> {
    if let Some(p) = place.point {
        return Some(GeoBox { south: p.lat, north: p.lat, west: p.lon, east: p.lon });
    }
    let b = *table().boxes.get(&place.country?)?;
    // A box across the antimeridian (west > east) is taken as all longitudes: still a bound.
    Some(if b.west > b.east { GeoBox { west: -180.0, east: 180.0, ..b } } else { b })
}

/// The nearest values of two closed intervals, preferring (when they overlap) the one farthest
/// from zero, which for latitudes makes longitude gaps shortest.
fn nearest(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    if a.1 < b.0 {
        (a.1, b.0)
    } else if b.1 < a.0 {
        (a.0, b.1)
    } else {
        let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
        let v = if hi.abs() >= lo.abs() { hi } else { lo };
        (v, v)
    }
}

/// A lower bound (km) on the distance between two places; `None` when either is unknown.
pub fn min_distance_km(a: &Place, b: &Place) -> Option<f64> {
    if let (Some(pa), Some(pb)) = (a.point, b.point) {
        return Some(
            (haversine_km(pa.lat, pa.lon, pb.lat, pb.lon) - pa.radius_km - pb.radius_km).max(0.0),
        );
    }
    if a.point.is_none() && b.point.is_none() && a.country.is_some() && a.country == b.country {
        return Some(0.0);
    }
    let (ba, bb) = (box_of(a)?, box_of(b)?);
    let (lat_a, lat_b) = nearest((ba.south, ba.north), (bb.south, bb.north));
    // Longitudes wrap: try the direct gap and the gap across the antimeridian.
    let (lon_a, lon_b) = nearest((ba.west, ba.east), (bb.west, bb.east));
    let direct = haversine_km(lat_a, lon_a, lat_b, lon_b);
    let wrapped = if ba.east < bb.west {
        haversine_km(lat_a, ba.west, lat_b, bb.east)
    } else if bb.east < ba.west {
        haversine_km(lat_a, ba.east, lat_b, bb.west)
    } else {
        direct
    };
    let radius = a.point.map_or(0.0, |p| p.radius_km) + b.point.map_or(0.0, |p| p.radius_km);
    Some((direct.min(wrapped) - radius).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn countries_come_from_the_embedded_table() {
        // First rows of the source data (APNIC test ranges allocated to AU/CN/JP).
        assert_eq!(country_of(ip("1.0.0.1")).map(|c| c.to_string()), Some("AU".into()));
        assert_eq!(country_of(ip("1.0.1.1")).map(|c| c.to_string()), Some("CN".into()));
        assert_eq!(country_of(ip("1.0.16.1")).map(|c| c.to_string()), Some("JP".into()));
        assert_eq!(country_of(ip("2001:200::1")).map(|c| c.to_string()), Some("AU".into()));
        assert_eq!(
            country_of(ip("::ffff:1.0.0.1")),
            country_of(ip("1.0.0.1")),
            "IPv4-mapped IPv6 uses the IPv4 table"
        );
        // Private and documentation addresses have no country.
        for private in [
            "10.1.2.3",
            "192.168.0.1",
            "127.0.0.1",
            "198.51.100.7",
            "100.64.1.1",
            "fe80::1",
            "fd00::1",
        ] {
            assert_eq!(country_of(ip(private)), None, "{private}");
        }
        assert!(table().v4_starts.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        assert!(table().v6_starts.windows(2).all(|w| w[0] < w[1]));
        assert!(table().boxes.len() > 200);
        assert_eq!(Country::from_name("United Kingdom"), Country::parse("GB"));
        assert_eq!(Country::from_name("germany"), Country::parse("DE"));
        assert_eq!(Country::from_name("Russia"), Country::parse("RU"));
        assert_eq!(Country::from_name("Atlantis"), None);
    }

    #[test]
    fn haversine_matches_known_distances() {
        // Berlin – Sydney ≈ 16,100 km; Berlin – Munich ≈ 504 km.
        let d = haversine_km(52.52, 13.405, -33.8688, 151.2093);
        assert!((d - 16_090.0).abs() < 60.0, "{d}");
        let d = haversine_km(52.52, 13.405, 48.1351, 11.582);
        assert!((d - 504.0).abs() < 5.0, "{d}");
    }

    fn country(cc: &str) -> Place {
        Place { country: Country::parse(cc), ..Default::default() }
    }

    #[test]
    fn country_precision_gives_a_lower_bound() {
        assert_eq!(min_distance_km(&country("DE"), &country("AT")), Some(0.0), "neighbours");
        assert_eq!(min_distance_km(&country("DE"), &country("DE")), Some(0.0));
        let de_au = min_distance_km(&country("DE"), &country("AU")).unwrap();
        // Real closest points are > 10,000 km apart; the bound must not exceed Berlin–Sydney.
        assert!(de_au > 8_000.0 && de_au < 16_090.0, "{de_au}");
        let us_de = min_distance_km(&country("US"), &country("DE")).unwrap();
        assert!(us_de > 5_000.0 && us_de < 7_000.0, "{us_de}");
        // Across the antimeridian: New Zealand to Chile.
        let nz_cl = min_distance_km(&country("NZ"), &country("CL"));
        assert!(nz_cl.is_some());
        assert_eq!(min_distance_km(&country("DE"), &Place::default()), None);
    }

    #[test]
    fn the_city_database_refines_places() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/city-test.mmdb");
        let geo = Geo::with_city_db(CityDb::open(&path).unwrap());
        let berlin = geo.locate(ip("198.51.100.10"));
        assert_eq!(berlin.city.as_deref(), Some("Berlin"));
        assert_eq!(berlin.country.map(|c| c.to_string()), Some("DE".into()));
        let sydney = geo.locate(ip("203.0.113.10"));
        let d = min_distance_km(&berlin, &sydney).unwrap();
        assert!((d - (16_090.0 - 40.0)).abs() < 80.0, "{d}");
        // Not in the city file: the country table answers.
        assert_eq!(geo.locate(ip("1.0.0.1")).country, Country::parse("AU"));
        assert!(geo.locate(ip("1.0.0.1")).point.is_none());
        let err = CityDb::open(Path::new("/nonexistent.mmdb")).err().unwrap().to_string();
        assert!(err.contains("/nonexistent.mmdb"), "{err}");
    }
}
