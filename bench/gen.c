/* gen: a reference retail network and a generated day of events for omo.
 *
 * Writes DIR/network.yaml, DIR/routing.yaml and DIR/events.jsonl (contract sections 2-4):
 * a warehouse per US fulfilment centre, stores around the 99 largest US metro areas in
 * proportion to population, stock snapshots for every stocked (node, SKU), then a day of
 * orders interleaved with walk-in sales, receipts, RFID recounts and cancellations.
 *
 * The output follows from the options alone: one seed gives the same bytes on every run.
 * The program keeps its own PRNG (splitmix64) so the C library's rand() cannot change it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* 2026-11-23T00:00:00Z, the first day's midnight, in seconds since the epoch. */
#define DAY0_EPOCH 1795392000LL
#define DAY_MS     86400000LL
#define KM_PER_DEG 111.195 /* one degree of latitude on a sphere of radius 6371.0 km */

/* ---- reference data ---------------------------------------------------------------- */

typedef struct city {
    const char *name, *state;
    double lat, lon;
    long population;
} city;

/* us_cities.csv, copied as is.
 * city,state,lat,lon,population */
static const city CITIES[] = {
    {"New York", "New York", 40.6943, -73.9249, 18680025},
    {"Los Angeles", "California", 34.1141, -118.4068, 12531334},
    {"Chicago", "Illinois", 41.8375, -87.6866, 8586888},
    {"Miami", "Florida", 25.784, -80.2101, 6076316},
    {"Dallas", "Texas", 32.7935, -96.7667, 5910669},
    {"Houston", "Texas", 29.786, -95.3885, 5724418},
    {"Philadelphia", "Pennsylvania", 40.0077, -75.1339, 5540199},
    {"Atlanta", "Georgia", 33.7628, -84.422, 5151496},
    {"Washington", "District of Columbia", 38.9047, -77.0163, 5066973},
    {"Boston", "Massachusetts", 42.3188, -71.0852, 4465966},
    {"Phoenix", "Arizona", 33.5722, -112.0892, 4187723},
    {"Detroit", "Michigan", 42.3834, -83.1024, 3731486},
    {"San Francisco", "California", 37.7558, -122.4449, 3557982},
    {"Seattle", "Washington", 47.6211, -122.3244, 3530752},
    {"San Diego", "California", 32.8313, -117.1222, 3178495},
    {"Minneapolis", "Minnesota", 44.9635, -93.2678, 2885614},
    {"Tampa", "Florida", 27.9945, -82.4447, 2771700},
    {"Brooklyn", "New York", 40.6501, -73.9496, 2736074},
    {"Denver", "Colorado", 39.762, -104.8758, 2709398},
    {"Queens", "New York", 40.7498, -73.7976, 2405464},
    {"Baltimore", "Maryland", 39.3051, -76.6144, 2270087},
    {"Las Vegas", "Nevada", 36.2333, -115.2654, 2165405},
    {"St. Louis", "Missouri", 38.6359, -90.2451, 2144317},
    {"Riverside", "California", 33.9381, -117.3949, 2112239},
    {"Portland", "Oregon", 45.5371, -122.65, 2072553},
    {"San Antonio", "Texas", 29.4632, -98.5238, 2036324},
    {"Sacramento", "California", 38.5677, -121.4685, 1882358},
    {"San Juan", "Puerto Rico", 18.3985, -66.061, 1854549},
    {"San Jose", "California", 37.3012, -121.848, 1797166},
    {"Orlando", "Florida", 28.4773, -81.337, 1792047},
    {"Cleveland", "Ohio", 41.4764, -81.6805, 1742437},
    {"Pittsburgh", "Pennsylvania", 40.4397, -79.9763, 1719289},
    {"Manhattan", "New York", 40.7834, -73.9662, 1694263},
    {"Austin", "Texas", 30.3005, -97.7522, 1685522},
    {"Cincinnati", "Ohio", 39.1413, -84.506, 1684800},
    {"Indianapolis", "Indiana", 39.7771, -86.1458, 1636763},
    {"Kansas City", "Missouri", 39.1238, -94.5541, 1602005},
    {"Columbus", "Ohio", 39.9862, -82.9855, 1547862},
    {"Charlotte", "North Carolina", 35.2083, -80.8303, 1526465},
    {"Virginia Beach", "Virginia", 36.7335, -76.0435, 1475522},
    {"Bronx", "New York", 40.8501, -73.8662, 1472654},
    {"Milwaukee", "Wisconsin", 43.0642, -87.9675, 1390046},
    {"Providence", "Rhode Island", 41.823, -71.4187, 1204385},
    {"Jacksonville", "Florida", 30.3322, -81.6749, 1165107},
    {"Salt Lake City", "Utah", 40.7776, -111.9311, 1135747},
    {"Nashville", "Tennessee", 36.1715, -86.7842, 1081876},
    {"Raleigh", "North Carolina", 35.8324, -78.6429, 1073795},
    {"Memphis", "Tennessee", 35.1087, -89.9663, 1072330},
    {"Richmond", "Virginia", 37.5295, -77.4756, 1025117},
    {"Louisville", "Kentucky", 38.1663, -85.6485, 1004821},
    {"New Orleans", "Louisiana", 30.0687, -89.9288, 957783},
    {"Bridgeport", "Connecticut", 41.1918, -73.1954, 948918},
    {"Oklahoma City", "Oklahoma", 35.4676, -97.5136, 947247},
    {"Buffalo", "New York", 42.9018, -78.8487, 926607},
    {"Hartford", "Connecticut", 41.7661, -72.6834, 918434},
    {"Fort Worth", "Texas", 32.7817, -97.3474, 892221},
    {"Tucson", "Arizona", 32.1541, -110.8787, 883127},
    {"McAllen", "Texas", 26.2252, -98.2467, 805270},
    {"El Paso", "Texas", 31.8476, -106.43, 798217},
    {"Omaha", "Nebraska", 41.2627, -96.0529, 791432},
    {"Albuquerque", "New Mexico", 35.1054, -106.6465, 762853},
    {"Birmingham", "Alabama", 33.5279, -86.7971, 753721},
    {"Sarasota", "Florida", 27.3387, -82.5432, 727388},
    {"Dayton", "Ohio", 39.7805, -84.2003, 723844},
    {"Rochester", "New York", 43.168, -77.6162, 720189},
    {"Fresno", "California", 36.783, -119.7939, 702486},
    {"Tulsa", "Oklahoma", 36.1283, -95.9042, 698349},
    {"Allentown", "Pennsylvania", 40.5961, -75.4756, 688658},
    {"Concord", "California", 37.9722, -122.0016, 667250},
    {"Cape Coral", "Florida", 26.6443, -81.9957, 649339},
    {"Charleston", "South Carolina", 32.8168, -79.9687, 645413},
    {"Colorado Springs", "Colorado", 38.8674, -104.7605, 621332},
    {"Springfield", "Massachusetts", 42.1155, -72.5395, 615728},
    {"Grand Rapids", "Michigan", 42.9619, -85.6562, 615273},
    {"Ogden", "Utah", 41.2279, -111.9682, 615015},
    {"Columbia", "South Carolina", 34.0378, -80.9036, 609689},
    {"Baton Rouge", "Louisiana", 30.442, -91.1311, 605449},
    {"Knoxville", "Tennessee", 35.9692, -83.9496, 603685},
    {"Mission Viejo", "California", 33.6096, -117.6551, 600802},
    {"Albany", "New York", 42.6664, -73.7987, 590823},
    {"Akron", "Ohio", 41.0798, -81.5219, 570375},
    {"New Haven", "Connecticut", 41.3113, -72.9246, 566683},
    {"Provo", "Utah", 40.2457, -111.6457, 563884},
    {"Bakersfield", "California", 35.3529, -119.0359, 556892},
    {"Murrieta", "California", 33.5719, -117.1909, 524133},
    {"Des Moines", "Iowa", 41.5725, -93.6105, 519180},
    {"Worcester", "Massachusetts", 42.2705, -71.8079, 516483},
    {"Mesa", "Arizona", 33.4015, -111.7178, 508918},
    {"Toledo", "Ohio", 41.6638, -83.5827, 498645},
    {"Palm Bay", "Florida", 27.9631, -80.6593, 496640},
    {"Staten Island", "New York", 40.5834, -74.1496, 495747},
    {"Wichita", "Kansas", 37.6895, -97.3443, 484715},
    {"Harrisburg", "Pennsylvania", 40.2752, -76.8843, 472261},
    {"Long Beach", "California", 33.7977, -118.167, 462081},
    {"Little Rock", "Arkansas", 34.7256, -92.3577, 446814},
    {"Madison", "Wisconsin", 43.0822, -89.393, 445499},
    {"Greenville", "South Carolina", 34.8354, -82.3646, 441303},
    {"Reno", "Nevada", 39.5497, -119.8483, 440547},
    {"Port St. Lucie", "Florida", 27.2796, -80.3884, 435182},
};
#define NCITIES (sizeof CITIES / sizeof CITIES[0])

typedef struct centre {
    const char *code, *state;
    double lat, lon;
} centre;

/* us_fulfillment_centers.csv, copied as is.
 * code,state,lat,lon */
static const centre CENTRES[] = {
    {"OAK4", "CA", 37.7448, -121.3985}, {"ONT6", "CA", 33.873, -117.2361},
    {"PHX6", "AZ", 33.433, -112.1644},  {"IND1", "IN", 39.9797, -86.3833},
    {"AVP3", "PA", 41.2776, -75.4973},  {"CAE1", "SC", 33.9114, -81.0501},
    {"BNA2", "TN", 36.1202, -86.4096},  {"DFW7", "TX", 32.9709, -97.3348},
    {"SAT1", "TX", 29.6021, -98.289},   {"RIC2", "VA", 37.3521, -77.3269},
};
#define NCENTRES (sizeof CENTRES / sizeof CENTRES[0])

typedef struct state_zone {
    const char *name, *abbr, *zone;
} state_zone;

/* The main IANA zone of each state the data names; the exceptions below cover the cities
 * that sit in another zone than most of their state. */
static const state_zone STATE_ZONES[] = {
    {"Alabama", "AL", "America/Chicago"},
    {"Arizona", "AZ", "America/Phoenix"},
    {"Arkansas", "AR", "America/Chicago"},
    {"California", "CA", "America/Los_Angeles"},
    {"Colorado", "CO", "America/Denver"},
    {"Connecticut", "CT", "America/New_York"},
    {"District of Columbia", "DC", "America/New_York"},
    {"Florida", "FL", "America/New_York"},
    {"Georgia", "GA", "America/New_York"},
    {"Illinois", "IL", "America/Chicago"},
    {"Indiana", "IN", "America/Indiana/Indianapolis"},
    {"Iowa", "IA", "America/Chicago"},
    {"Kansas", "KS", "America/Chicago"},
    {"Kentucky", "KY", "America/Kentucky/Louisville"},
    {"Louisiana", "LA", "America/Chicago"},
    {"Maryland", "MD", "America/New_York"},
    {"Massachusetts", "MA", "America/New_York"},
    {"Michigan", "MI", "America/Detroit"},
    {"Minnesota", "MN", "America/Chicago"},
    {"Missouri", "MO", "America/Chicago"},
    {"Nebraska", "NE", "America/Chicago"},
    {"Nevada", "NV", "America/Los_Angeles"},
    {"New Mexico", "NM", "America/Denver"},
    {"New York", "NY", "America/New_York"},
    {"North Carolina", "NC", "America/New_York"},
    {"Ohio", "OH", "America/New_York"},
    {"Oklahoma", "OK", "America/Chicago"},
    {"Oregon", "OR", "America/Los_Angeles"},
    {"Pennsylvania", "PA", "America/New_York"},
    {"Puerto Rico", "PR", "America/Puerto_Rico"},
    {"Rhode Island", "RI", "America/New_York"},
    {"South Carolina", "SC", "America/New_York"},
    {"Tennessee", "TN", "America/Chicago"},
    {"Texas", "TX", "America/Chicago"},
    {"Utah", "UT", "America/Denver"},
    {"Virginia", "VA", "America/New_York"},
    {"Washington", "WA", "America/Los_Angeles"},
    {"Wisconsin", "WI", "America/Chicago"},
};

static const struct {
    const char *city, *zone;
} CITY_ZONES[] = {
    {"El Paso", "America/Denver"},
    {"Knoxville", "America/New_York"},
};

static const char *state_zone_of(const char *state)
{
    for (size_t i = 0; i < sizeof STATE_ZONES / sizeof STATE_ZONES[0]; i++)
        if (!strcmp(STATE_ZONES[i].name, state) || !strcmp(STATE_ZONES[i].abbr, state))
            return STATE_ZONES[i].zone;
    return "UTC";
}

static const char *city_zone_of(const city *c)
{
    for (size_t i = 0; i < sizeof CITY_ZONES / sizeof CITY_ZONES[0]; i++)
        if (!strcmp(CITY_ZONES[i].city, c->name))
            return CITY_ZONES[i].zone;
    return state_zone_of(c->state);
}

/* ---- randomness ---------------------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Independent streams per part of the output, so that changing the number of orders or of
 * bad lines leaves the network and the stock as they were. */
static rng rng_stream(uint64_t seed, uint64_t stream)
{
    rng r = {seed};
    uint64_t s = 0;
    for (uint64_t i = 0; i <= stream; i++)
        s = rng_next(&r);
    return (rng){s};
}

static double rng_unit(rng *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static int64_t rng_range(rng *r, int64_t lo, int64_t hi) /* lo..hi inclusive */
{
    int64_t v = lo + (int64_t)(rng_unit(r) * (double)(hi - lo + 1));
    return v > hi ? hi : v;
}

static bool rng_chance(rng *r, double p)
{
    return rng_unit(r) < p;
}

/* Index into a cumulative weight table (last entry = total). */
static size_t pick_cdf(rng *r, const double *cdf, size_t n)
{
    double x = rng_unit(r) * cdf[n - 1];
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* A point uniformly distributed over the disc of radius_km around (lat, lon). */
static void jitter(rng *r, double lat, double lon, double radius_km, double *olat, double *olon)
{
    double angle = 2.0 * M_PI * rng_unit(r);
    double dist = radius_km * sqrt(rng_unit(r));
    *olat = lat + dist * cos(angle) / KM_PER_DEG;
    *olon = lon + dist * sin(angle) / (KM_PER_DEG * cos(lat * M_PI / 180.0));
}

/* ---- the generated world -------------------------------------------------------------- */

typedef struct opts {
    const char *out_dir;
    uint64_t seed;
    int64_t stores, skus, orders, days, bad;
    const char *demand; /* "tight" or "ample": the look-ahead world (write_demand_world) */
    int64_t horizon_hours, refresh_events;
} opts;

typedef struct store {
    char id[24];
    int city;
    double lat, lon;
    int capacity, safety;
    int *sku;     /* stocked SKUs, ascending */
    int *on_hand; /* the generator's own running count, to keep sales and recounts plausible */
    size_t nstock, cap;
} store;

typedef struct world {
    const opts *o;
    store *stores;
    size_t nstores;
    char (*sku_id)[24];
    bool *hazmat;
    int *rank;       /* sku -> popularity rank, 0 = best seller */
    int *by_rank;    /* rank -> sku */
    double *sku_cdf; /* cumulative Zipf weight by rank */
    double *city_cdf;
    FILE *ev;
    int64_t nevents, norders, nsnapshots, npos, nreceipts, nrecounts, ncancels, nbad;
    char *cancelled;  /* per order sequence number */
    char *order_chan; /* 'W' or 'M', per order sequence number */
} world;

static int64_t ms_now(int64_t day, int64_t offset_ms)
{
    return (DAY0_EPOCH * 1000) + day * DAY_MS + offset_ms;
}

static char *fmt_time(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms % 1000)
        snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
    else
        snprintf(buf + n, len - n, "Z");
    return buf;
}

static int digits(int64_t n)
{
    int d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* PREFIX followed by n zero-padded to width digits; ids are far shorter than the buffers. */
static void make_id(char *buf, size_t len, const char *prefix, int width, size_t n)
{
    int w = snprintf(buf, len, "%s%0*zu", prefix, width, n);
    if (w < 0 || (size_t)w >= len) {
        fputs("gen: identifier too long\n", stderr);
        exit(1);
    }
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fputs("gen: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* How many stores each city gets: one each, the rest by population (largest remainder).
 * With fewer stores than cities, the most populous cities get one each. */
static void stores_per_city(int64_t nstores, int64_t *per_city)
{
    long long total = 0;
    for (size_t c = 0; c < NCITIES; c++)
        total += CITIES[c].population;
    if (nstores < (int64_t)NCITIES) {
        for (int64_t k = 0; k < nstores; k++) {
            size_t best = NCITIES;
            for (size_t c = 0; c < NCITIES; c++)
                if (!per_city[c] &&
                    (best == NCITIES || CITIES[c].population > CITIES[best].population))
                    best = c;
            per_city[best] = 1;
        }
        return;
    }
    int64_t extra = nstores - (int64_t)NCITIES, given = 0;
    double rem[NCITIES];
    for (size_t c = 0; c < NCITIES; c++) {
        double quota = (double)extra * (double)CITIES[c].population / (double)total;
        per_city[c] = 1 + (int64_t)quota;
        rem[c] = quota - floor(quota);
        given += (int64_t)quota;
    }
    for (; given < extra; given++) {
        size_t best = 0;
        for (size_t c = 1; c < NCITIES; c++)
            if (rem[c] > rem[best])
                best = c;
        per_city[best]++;
        rem[best] = -1.0;
    }
}

static void build_world(world *w, const opts *o)
{
    rng r = rng_stream(o->seed, 1);
    w->o = o;

    w->nstores = (size_t)o->stores;
    w->stores = xcalloc(w->nstores, sizeof *w->stores);
    int64_t per_city[NCITIES] = {0};
    stores_per_city(o->stores, per_city);
    int width = digits(o->stores) < 4 ? 4 : digits(o->stores);
    size_t k = 0;
    for (size_t c = 0; c < NCITIES; c++) {
        for (int64_t i = 0; i < per_city[c]; i++, k++) {
            store *s = &w->stores[k];
            make_id(s->id, sizeof s->id, "S-", width, k + 1);
            s->city = (int)c;
            jitter(&r, CITIES[c].lat, CITIES[c].lon, 15.0, &s->lat, &s->lon);
            s->capacity = (int)rng_range(&r, 20, 40) * 10;
            s->safety = (int)rng_range(&r, 1, 2);
        }
    }

    size_t nskus = (size_t)o->skus;
    width = digits(o->skus) < 5 ? 5 : digits(o->skus);
    w->sku_id = xcalloc(nskus, sizeof *w->sku_id);
    w->hazmat = xcalloc(nskus, sizeof *w->hazmat);
    w->rank = xcalloc(nskus, sizeof *w->rank);
    w->by_rank = xcalloc(nskus, sizeof *w->by_rank);
    w->sku_cdf = xcalloc(nskus, sizeof *w->sku_cdf);
    for (size_t i = 0; i < nskus; i++) {
        make_id(w->sku_id[i], sizeof w->sku_id[i], "SKU-", width, i + 1);
        w->hazmat[i] = rng_chance(&r, 0.02);
        w->by_rank[i] = (int)i;
    }
    /* Best sellers are spread over the catalogue, not the first ids (Fisher-Yates). */
    for (size_t i = nskus - 1; i > 0; i--) {
        size_t j = (size_t)rng_range(&r, 0, (int64_t)i);
        int t = w->by_rank[i];
        w->by_rank[i] = w->by_rank[j];
        w->by_rank[j] = t;
    }
    double acc = 0;
    for (size_t i = 0; i < nskus; i++) {
        w->rank[w->by_rank[i]] = (int)i;
        acc += 1.0 / (double)(i + 1); /* Zipf, s = 1 */
        w->sku_cdf[i] = acc;
    }

    w->city_cdf = xcalloc(NCITIES, sizeof *w->city_cdf);
    acc = 0;
    for (size_t c = 0; c < NCITIES; c++) {
        acc += (double)CITIES[c].population;
        w->city_cdf[c] = acc;
    }
}

static void destroy_world(world *w)
{
    for (size_t i = 0; i < w->nstores; i++) {
        free(w->stores[i].sku);
        free(w->stores[i].on_hand);
    }
    free(w->stores);
    free(w->sku_id);
    free(w->hazmat);
    free(w->rank);
    free(w->by_rank);
    free(w->sku_cdf);
    free(w->city_cdf);
    free(w->cancelled);
    free(w->order_chan);
}

/* ---- network.yaml and routing.yaml ------------------------------------------------------ */

static void write_command_line(FILE *f, const opts *o)
{
    fprintf(f,
            "# Generated by `gen --seed %" PRIu64 " --stores %" PRId64 " --skus %" PRId64
            "` (bench/gen.c).\n",
            o->seed, o->stores, o->skus);
}

static void write_network(const world *w, FILE *f)
{
    fprintf(
        f,
        "# The fulfilment network: a warehouse at each of %zu US e-commerce fulfilment\n"
        "# centres and %zu stores around the 99 largest US metro areas, placed by population.\n",
        NCENTRES, w->nstores);
    write_command_line(f, w->o);
    fputs("nodes:\n", f);
    for (size_t i = 0; i < NCENTRES; i++) {
        const centre *c = &CENTRES[i];
        fprintf(f,
                "  - id: DC-%s\n"
                "    type: warehouse\n"
                "    lat: %.4f\n"
                "    lon: %.4f\n"
                "    timezone: %s\n"
                "    ship: true\n"
                "    pickup: false\n"
                "    pick_cost_per_unit: 0.30\n"
                "    handling_cost: 1.00\n"
                "    handling_hours: 24\n"
                "    daily_capacity: 60000\n"
                "    safety_stock: 0\n",
                c->code, c->lat, c->lon, state_zone_of(c->state));
    }
    for (size_t i = 0; i < w->nstores; i++) {
        const store *s = &w->stores[i];
        const city *c = &CITIES[s->city];
        fprintf(f,
                "  - id: %s  # %s, %s\n"
                "    type: store\n"
                "    lat: %.4f\n"
                "    lon: %.4f\n"
                "    timezone: %s\n"
                "    ship: true\n"
                "    pickup: true\n"
                "    pick_cost_per_unit: 0.50\n"
                "    handling_cost: 1.50\n"
                "    handling_hours: 4\n"
                "    daily_capacity: %d\n"
                "    safety_stock: %d\n",
                s->id, c->name, c->state, s->lat, s->lon, city_zone_of(c), s->capacity, s->safety);
    }
    bool any = false;
    for (int64_t i = 0; i < w->o->skus; i++) {
        if (!w->hazmat[i])
            continue;
        if (!any)
            fputs("skus:\n", f);
        any = true;
        fprintf(f, "  - {sku: %s, tags: [hazmat]}\n", w->sku_id[i]);
    }
}

static void write_routing(const world *w, FILE *f)
{
    fputs("# Routing rules: what each way of fulfilling an order costs, and the rules ops add.\n",
          f);
    write_command_line(f, w->o);
    fprintf(f,
            "version: 1\n"
            "objective:\n"
            "  hour_cost: 0.10            # money per hour of the order's promised time (its "
            "slowest shipment)\n"
            "  split_penalty: 3.00        # per shipment beyond the first\n"
            "max_shipments: 3\n"
            "split_lines: false           # true: one line's quantity may come from several "
            "nodes\n"
            "partial: allow               # allow: allocate what can be, backorder the rest; "
            "deny: all or nothing\n"
            "services:\n"
            "  standard:\n"
            "    zones:                   # first zone with distance <= max_km applies; beyond "
            "the last: not eligible\n"
            "      - {max_km: 50,   cost: 4.00, hours: 24}\n"
            "      - {max_km: 500,  cost: 6.50, hours: 48}\n"
            "      - {max_km: 5000, cost: 9.00, hours: 96}\n"
            "  same_day:\n"
            "    from: [store]            # node types allowed for the service; omitted = all\n"
            "    zones: [{max_km: 15, cost: 8.00, hours: 3}]\n"
            "pickup:\n"
            "  transfer:                  # feeding a pickup store from another node; omitted = "
            "not allowed\n"
            "    from: [warehouse]\n"
            "    zones: [{max_km: 300, cost: 2.00, hours: 48}]\n"
            "rules:                       # applied in order, each to the (order, node, sku) it "
            "matches\n"
            "  - name: hazmat ships only from warehouses\n"
            "    when: {sku_tag: hazmat}\n"
            "    allow_node_types: [warehouse]\n"
            "  - name: protect flagship display stock\n"
            "    when: {node: %s}\n"
            "    safety_stock: 3\n"
            "  - name: marketplace orders never ship from stores\n"
            "    when: {channel: marketplace}\n"
            "    deny_methods: [ship_from_store]\n",
            w->stores[0].id);
}

/* ---- events.jsonl ---------------------------------------------------------------------- */

/* A store keeps a SKU in one place: the bin follows from (store, SKU) alone. */
static void bin_of(const world *w, size_t store_ix, int sku, char *buf, size_t len)
{
    rng r = {w->o->seed ^ ((uint64_t)store_ix << 32) ^ (uint64_t)sku};
    uint64_t h = rng_next(&r);
    snprintf(buf, len, "%02d-%02d-%d", (int)(h % 20) + 1, (int)((h >> 16) % 15) + 1,
             (int)((h >> 32) % 5) + 1);
}

static void emit_snapshot(world *w, const char *event_id, const char *node, int sku,
                          int64_t on_hand, const char *bin, int64_t ms)
{
    char at[40];
    fprintf(w->ev,
            "{\"type\":\"stock.snapshot\",\"event_id\":\"%s\",\"node_id\":\"%s\",\"sku\":\"%s\","
            "\"on_hand\":%" PRId64,
            event_id, node, w->sku_id[sku], on_hand);
    if (bin)
        fprintf(w->ev, ",\"bin\":\"%s\"", bin);
    fprintf(w->ev, ",\"at\":\"%s\"}\n", fmt_time(ms, at, sizeof at));
    w->nevents++;
}

static void emit_delta(world *w, const char *event_id, const char *node, int sku, int64_t delta,
                       const char *reason, int64_t ms)
{
    char at[40];
    fprintf(w->ev,
            "{\"type\":\"stock.delta\",\"event_id\":\"%s\",\"node_id\":\"%s\",\"sku\":\"%s\","
            "\"delta\":%" PRId64 ",\"reason\":\"%s\",\"at\":\"%s\"}\n",
            event_id, node, w->sku_id[sku], delta, reason, fmt_time(ms, at, sizeof at));
    w->nevents++;
}

static void store_add_stock(store *s, int sku, int on_hand)
{
    if (s->nstock == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        int *a = realloc(s->sku, s->cap * sizeof *a);
        int *b = a ? realloc(s->on_hand, s->cap * sizeof *b) : NULL;
        if (!a || !b) {
            fputs("gen: out of memory\n", stderr);
            exit(1);
        }
        s->sku = a;
        s->on_hand = b;
    }
    s->sku[s->nstock] = sku;
    s->on_hand[s->nstock] = on_hand;
    s->nstock++;
}

/* The opening stock. Warehouses carry about 80% of the catalogue, 50-500 units each plus a
 * share of 1.2 times the SKU's expected demand, so that best sellers do not run dry in the
 * first hours; stores carry about 10%, the best-selling tenth more often than the rest. */
static void write_opening_stock(world *w)
{
    rng r = rng_stream(w->o->seed, 2);
    int64_t ms = ms_now(0, 0);
    size_t nskus = (size_t)w->o->skus;
    double zipf_total = w->sku_cdf[nskus - 1];
    double units = (double)w->o->orders * (double)w->o->days * 1.6 /* lines */ * 1.4 /* qty */;
    char event_id[96], node[24];

    for (size_t i = 0; i < NCENTRES; i++) {
        snprintf(node, sizeof node, "DC-%s", CENTRES[i].code);
        for (size_t sku = 0; sku < nskus; sku++) {
            if (!rng_chance(&r, 0.8))
                continue;
            double demand = units / ((double)(w->rank[sku] + 1) * zipf_total);
            int64_t on_hand =
                rng_range(&r, 50, 500) + (int64_t)ceil(1.2 * demand / (0.8 * NCENTRES));
            snprintf(event_id, sizeof event_id, "init-%s-%s", node, w->sku_id[sku]);
            emit_snapshot(w, event_id, node, (int)sku, on_hand, NULL, ms);
            w->nsnapshots++;
        }
    }

    size_t top = nskus / 10;
    double p_top = 0.25, p_rest = nskus > top ? (0.10 * (double)nskus - p_top * (double)top) /
                                                    (double)(nskus - top)
                                              : 0.0;
    for (size_t i = 0; i < w->nstores; i++) {
        store *s = &w->stores[i];
        for (size_t sku = 0; sku < nskus; sku++) {
            if (!rng_chance(&r, (size_t)w->rank[sku] < top ? p_top : p_rest))
                continue;
            int on_hand = (int)rng_range(&r, 1, 12);
            char bin[16];
            bin_of(w, i, (int)sku, bin, sizeof bin);
            snprintf(event_id, sizeof event_id, "init-%s-%s", s->id, w->sku_id[sku]);
            emit_snapshot(w, event_id, s->id, (int)sku, on_hand, bin, ms);
            store_add_stock(s, (int)sku, on_hand);
            w->nsnapshots++;
        }
    }
}

static size_t nearest_store(const world *w, double lat, double lon)
{
    /* Equirectangular distance is enough to rank stores a few tens of km apart. */
    double k = cos(lat * M_PI / 180.0), best = INFINITY;
    size_t best_ix = 0;
    for (size_t i = 0; i < w->nstores; i++) {
        double dy = w->stores[i].lat - lat, dx = (w->stores[i].lon - lon) * k;
        double d = dx * dx + dy * dy;
        if (d < best) {
            best = d;
            best_ix = i;
        }
    }
    return best_ix;
}

static int64_t pick_weighted(rng *r, const int *weights, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++)
        total += weights[i];
    int64_t x = rng_range(r, 0, total - 1);
    for (int i = 0; i < n; i++) {
        if (x < weights[i])
            return i;
        x -= weights[i];
    }
    return n - 1;
}

static void emit_order(world *w, rng *r, int64_t seq, int64_t ms)
{
    static const int LINE_WEIGHTS[] = {60, 25, 10, 5};
    static const int QTY_WEIGHTS[] = {70, 20, 10};
    char at[40];

    double u = rng_unit(r);
    const char *service = u < 0.85 ? "standard" : u < 0.90 ? "same_day" : NULL;
    /* Marketplace orders are all shipped; 10% of the ship orders' share keeps them at 10%. */
    char chan = service && rng_chance(r, 0.10 / 0.90) ? 'M' : 'W';
    size_t c = pick_cdf(r, w->city_cdf, NCITIES);
    double lat, lon;
    jitter(r, CITIES[c].lat, CITIES[c].lon, 30.0, &lat, &lon);

    w->order_chan[seq] = chan;
    fprintf(w->ev,
            "{\"type\":\"order.created\",\"order_id\":\"%c-%07" PRId64 "\",\"created_at\":\"%s\","
            "\"channel\":\"%s\",\"customer\":{\"lat\":%.4f,\"lon\":%.4f},",
            chan, seq + 1, fmt_time(ms, at, sizeof at), chan == 'M' ? "marketplace" : "web", lat,
            lon);
    if (service)
        fprintf(w->ev, "\"delivery\":{\"method\":\"ship\",\"service\":\"%s\"},", service);
    else
        fprintf(w->ev, "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"%s\"},",
                w->stores[nearest_store(w, lat, lon)].id);

    int64_t nlines = 1 + pick_weighted(r, LINE_WEIGHTS, 4);
    if (nlines > w->o->skus)
        nlines = w->o->skus;
    int skus[4];
    int n = 0;
    for (int64_t i = 0; i < nlines; i++) {
        for (int attempt = 0; attempt < 32; attempt++) {
            int sku = w->by_rank[pick_cdf(r, w->sku_cdf, (size_t)w->o->skus)];
            bool dup = false;
            for (int j = 0; j < n; j++)
                dup |= skus[j] == sku;
            if (!dup) {
                skus[n++] = sku;
                break;
            }
        }
    }
    fputs("\"lines\":[", w->ev);
    for (int i = 0; i < n; i++)
        fprintf(w->ev, "%s{\"line_id\":\"%d\",\"sku\":\"%s\",\"qty\":%" PRId64 "}", i ? "," : "",
                i + 1, w->sku_id[skus[i]], 1 + pick_weighted(r, QTY_WEIGHTS, 3));
    fputs("]}\n", w->ev);
    w->nevents++;
    w->norders++;
}

static void emit_pos_sale(world *w, rng *r, int64_t ms)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        store *s = &w->stores[rng_range(r, 0, (int64_t)w->nstores - 1)];
        if (!s->nstock)
            continue;
        size_t k = (size_t)rng_range(r, 0, (int64_t)s->nstock - 1);
        if (s->on_hand[k] <= 0)
            continue;
        s->on_hand[k]--;
        char event_id[64];
        snprintf(event_id, sizeof event_id, "pos-%s-%" PRId64, s->id, ++w->npos);
        emit_delta(w, event_id, s->id, s->sku[k], -1, "pos_sale", ms);
        return;
    }
}

static void emit_receipt(world *w, rng *r, int64_t ms)
{
    char node[24], event_id[64];
    snprintf(node, sizeof node, "DC-%s", CENTRES[rng_range(r, 0, NCENTRES - 1)].code);
    int sku = w->by_rank[pick_cdf(r, w->sku_cdf, (size_t)w->o->skus)];
    int64_t qty = rng_range(r, 20, 200);
    snprintf(event_id, sizeof event_id, "rcv-%s-%" PRId64, node, ++w->nreceipts);
    emit_delta(w, event_id, node, sku, qty, "receipt", ms);
}

/* An RFID count finds what walk-ins, theft and misplacement left: mostly a little less. */
static void emit_recount(world *w, rng *r, int64_t ms)
{
    static const int SHRINK_WEIGHTS[] = {10, 30, 50, 10}; /* -2, -1, 0, +1 */
    size_t ix = (size_t)rng_range(r, 0, (int64_t)w->nstores - 1);
    store *s = &w->stores[ix];
    if (!s->nstock)
        return;
    size_t k = (size_t)rng_range(r, 0, (int64_t)s->nstock - 1);
    int counted = s->on_hand[k] + (int)pick_weighted(r, SHRINK_WEIGHTS, 4) - 2;
    s->on_hand[k] = counted < 0 ? 0 : counted;
    char event_id[64], bin[16];
    snprintf(event_id, sizeof event_id, "rfid-%s-%" PRId64, s->id, ++w->nrecounts);
    bin_of(w, ix, s->sku[k], bin, sizeof bin);
    emit_snapshot(w, event_id, s->id, s->sku[k], s->on_hand[k], bin, ms);
}

/* Customers cancel recent orders: one of the last thousand. */
static void emit_cancel(world *w, rng *r, int64_t seq, int64_t ms)
{
    if (seq <= 0)
        return;
    int64_t window = seq < 1000 ? seq : 1000;
    int64_t target = seq - 1 - rng_range(r, 0, window - 1);
    if (w->cancelled[target])
        return;
    w->cancelled[target] = 1;
    char at[40];
    fprintf(w->ev,
            "{\"type\":\"order.cancelled\",\"order_id\":\"%c-%07" PRId64 "\",\"at\":\"%s\"}\n",
            w->order_chan[target], target + 1, fmt_time(ms, at, sizeof at));
    w->nevents++;
    w->ncancels++;
}

/* Lines a connector must refuse without stopping: one of four faults, in turn. */
static void emit_bad(world *w, int64_t k, int64_t ms)
{
    char at[40];
    fmt_time(ms, at, sizeof at);
    switch (k % 4) {
    case 0: /* cut off mid-object */
        fprintf(w->ev,
                "{\"type\":\"order.created\",\"order_id\":\"BAD-%04" PRId64 "\",\"created_at\":\n",
                k + 1);
        break;
    case 1: /* no lines */
        fprintf(w->ev,
                "{\"type\":\"order.created\",\"order_id\":\"BAD-%04" PRId64
                "\",\"created_at\":\"%s\","
                "\"channel\":\"web\",\"customer\":{\"lat\":40.7128,\"lon\":-74.0060},"
                "\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"}}\n",
                k + 1, at);
        break;
    case 2: /* negative quantity */
        fprintf(w->ev,
                "{\"type\":\"order.created\",\"order_id\":\"BAD-%04" PRId64
                "\",\"created_at\":\"%s\","
                "\"channel\":\"web\",\"customer\":{\"lat\":40.7128,\"lon\":-74.0060},"
                "\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},"
                "\"lines\":[{\"line_id\":\"1\",\"sku\":\"%s\",\"qty\":-2}]}\n",
                k + 1, at, w->sku_id[0]);
        break;
    default: /* a node the network does not have */
        fprintf(w->ev,
                "{\"type\":\"stock.delta\",\"event_id\":\"bad-%04" PRId64
                "\",\"node_id\":\"X-NOWHERE\","
                "\"sku\":\"%s\",\"delta\":5,\"reason\":\"receipt\",\"at\":\"%s\"}\n",
                k + 1, w->sku_id[0], at);
        break;
    }
    w->nevents++;
    w->nbad++;
}

/* Orders spread evenly over each day (whole seconds while there are fewer orders than
 * seconds), each followed by what happened in stores and warehouses meanwhile. */
static void write_days(world *w)
{
    rng r = rng_stream(w->o->seed, 3);
    int64_t per_day = w->o->orders, total = per_day * w->o->days;
    w->cancelled = xcalloc((size_t)total, 1);
    w->order_chan = xcalloc((size_t)total, 1);
    int64_t unit = per_day <= DAY_MS / 1000 ? 1000 : 1;
    int64_t next_bad = 0, seq = 0;

    for (int64_t day = 0; day < w->o->days; day++) {
        for (int64_t i = 0; i < per_day; i++, seq++) {
            int64_t ms = ms_now(day, unit * ((i * (DAY_MS / unit)) / per_day));
            /* Bad line b goes before order (b + 1) * total / (bad + 1): evenly spread. */
            while (next_bad < w->o->bad && (next_bad + 1) * total / (w->o->bad + 1) <= seq)
                emit_bad(w, next_bad++, ms);
            emit_order(w, &r, seq, ms);
            if (rng_chance(&r, 0.10))
                emit_pos_sale(w, &r, ms);
            if (rng_chance(&r, 0.02))
                emit_receipt(w, &r, ms);
            if (rng_chance(&r, 0.06))
                emit_recount(w, &r, ms);
            if (rng_chance(&r, 0.02))
                emit_cancel(w, &r, seq, ms);
        }
    }
    while (next_bad < w->o->bad)
        emit_bad(w, next_bad++, ms_now(w->o->days, 0));
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "gen: %s: %s\n", path, strerror(errno));
    return f;
}

static bool close_out(FILE *f, const char *path)
{
    bool ok = !ferror(f);
    if (fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "gen: %s: write failed\n", path);
    return ok;
}

/* ---- the look-ahead world: a demand model, its forecast, a week drawn from it ------------- */

/* Expected lines per order and units per line of the demand model's orders. */
static const int DM_LINES[] = {70, 25, 5};
static const int DM_QTY[] = {85, 15};
#define DM_MEAN_LINES 1.35
#define DM_MEAN_QTY   1.15

/* Expected units of sku (by id) per day ordered near city c. */
static double dm_rate(const world *w, int sku, size_t c)
{
    double city = (double)CITIES[c].population / w->city_cdf[NCITIES - 1];
    double zipf = 1.0 / ((double)(w->rank[sku] + 1) * w->sku_cdf[w->o->skus - 1]);
    return (double)w->o->orders * DM_MEAN_LINES * DM_MEAN_QTY * city * zipf;
}

static void write_demand_routing(const world *w, FILE *f, bool lookahead)
{
    fputs("# Routing rules of the look-ahead benchmark: one ship service.\n", f);
    write_command_line(f, w->o);
    fputs("version: 1\n"
          "objective:\n"
          "  hour_cost: 0.10\n"
          "  split_penalty: 3.00\n"
          "max_shipments: 3\n"
          "split_lines: false\n"
          "partial: allow\n"
          "services:\n"
          "  standard:\n"
          "    zones:\n"
          "      - {max_km: 50,   cost: 4.00, hours: 24}\n"
          "      - {max_km: 500,  cost: 6.50, hours: 48}\n"
          "      - {max_km: 5000, cost: 9.00, hours: 96}\n"
          "rules:\n"
          "  - name: hazmat ships only from warehouses\n"
          "    when: {sku_tag: hazmat}\n"
          "    allow_node_types: [warehouse]\n",
          f);
    /* The stores are not restocked within the week: the horizon ends with it. Prices are
     * marginal values, at which the very demand they stand for is indifferent between the
     * unit and its alternative: a weight below 1 gives such an order the unit. */
    char end[40];
    if (lookahead)
        fprintf(f,
                "lookahead:\n"
                "  forecast: forecast.csv\n"
                "  horizon_hours: %" PRId64 "\n"
                "  horizon_end: \"%s\"\n"
                "  refresh_events: %" PRId64 "\n"
                "  weight: 0.6\n",
                w->o->horizon_hours, fmt_time(ms_now(w->o->days, 0), end, sizeof end),
                w->o->refresh_events);
}

/* The demand model as the forecast: every SKU at every city centre. */
static void write_forecast(const world *w, FILE *f)
{
    fputs("sku,lat,lon,units_per_day\n", f);
    for (int64_t k = 0; k < w->o->skus; k++)
        for (size_t c = 0; c < NCITIES; c++)
            fprintf(f, "%s,%.4f,%.4f,%.6f\n", w->sku_id[k], CITIES[c].lat, CITIES[c].lon,
                    dm_rate(w, (int)k, c));
}

/* Opening stock, then each day's orders drawn from the model (web, standard service, from the
 * cities by population, SKUs by popularity), warehouses receiving half a day of all the
 * demand of every SKU at each midnight. Warehouses open with ten days of it, so they never
 * run dry; stores hold what the regime says: tight, 1-3 units of 60% of the SKUs; ample, every
 * SKU, twice a week of its city's demand per store, and 5 more. */
static void write_demand_events(world *w)
{
    rng r = rng_stream(w->o->seed, 2);
    size_t nskus = (size_t)w->o->skus;
    bool tight = !strcmp(w->o->demand, "tight");
    char event_id[96], node[24];
    int64_t per_city[NCITIES] = {0};
    stores_per_city(w->o->stores, per_city);
    for (size_t i = 0; i < NCENTRES; i++) {
        snprintf(node, sizeof node, "DC-%s", CENTRES[i].code);
        for (size_t sku = 0; sku < nskus; sku++) {
            double day = 0;
            for (size_t c = 0; c < NCITIES; c++)
                day += dm_rate(w, (int)sku, c);
            snprintf(event_id, sizeof event_id, "init-%s-%s", node, w->sku_id[sku]);
            emit_snapshot(w, event_id, node, (int)sku, 10 + (int64_t)ceil(10 * day), NULL,
                          ms_now(0, 0));
            w->nsnapshots++;
        }
    }
    for (size_t i = 0; i < w->nstores; i++) {
        store *s = &w->stores[i];
        for (size_t sku = 0; sku < nskus; sku++) {
            int64_t on_hand;
            if (tight)
                on_hand = rng_chance(&r, 0.6) ? rng_range(&r, 1, 3) : 0;
            else
                on_hand = 5 + (int64_t)ceil(2 * 7 * dm_rate(w, (int)sku, (size_t)s->city) /
                                            (double)per_city[s->city]);
            if (!on_hand)
                continue;
            snprintf(event_id, sizeof event_id, "init-%s-%s", s->id, w->sku_id[sku]);
            emit_snapshot(w, event_id, s->id, (int)sku, on_hand, NULL, ms_now(0, 0));
            w->nsnapshots++;
        }
    }
    rng ro = rng_stream(w->o->seed, 3);
    int64_t per_day = w->o->orders, seq = 0;
    for (int64_t day = 0; day < w->o->days; day++) {
        if (day > 0)
            for (size_t i = 0; i < NCENTRES; i++)
                for (size_t sku = 0; sku < nskus; sku++) {
                    double all = 0;
                    for (size_t c = 0; c < NCITIES; c++)
                        all += dm_rate(w, (int)sku, c);
                    snprintf(node, sizeof node, "DC-%s", CENTRES[i].code);
                    snprintf(event_id, sizeof event_id, "rcv-%s-%s-%" PRId64, node, w->sku_id[sku],
                             day);
                    emit_delta(w, event_id, node, (int)sku, 1 + (int64_t)ceil(all / 2), "receipt",
                               ms_now(day, 0));
                    w->nreceipts++;
                }
        for (int64_t i = 0; i < per_day; i++, seq++) {
            int64_t ms = ms_now(day, 1000 * ((i * (DAY_MS / 1000)) / (per_day ? per_day : 1)));
            char at[40];
            size_t c = pick_cdf(&ro, w->city_cdf, NCITIES);
            double lat, lon;
            jitter(&ro, CITIES[c].lat, CITIES[c].lon, 30.0, &lat, &lon);
            fprintf(w->ev,
                    "{\"type\":\"order.created\",\"order_id\":\"W-%07" PRId64
                    "\",\"created_at\":\"%s\",\"channel\":\"web\",\"customer\":{\"lat\":%.4f,"
                    "\"lon\":%.4f},\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},"
                    "\"lines\":[",
                    seq + 1, fmt_time(ms, at, sizeof at), lat, lon);
            int64_t nlines = 1 + pick_weighted(&ro, DM_LINES, 3);
            int skus[3], n = 0;
            for (int64_t l = 0; l < nlines && l < w->o->skus; l++)
                for (int attempt = 0; attempt < 32; attempt++) {
                    int sku = w->by_rank[pick_cdf(&ro, w->sku_cdf, nskus)];
                    bool dup = false;
                    for (int j = 0; j < n; j++)
                        dup |= skus[j] == sku;
                    if (!dup) {
                        skus[n++] = sku;
                        break;
                    }
                }
            for (int l = 0; l < n; l++)
                fprintf(w->ev, "%s{\"line_id\":\"%d\",\"sku\":\"%s\",\"qty\":%" PRId64 "}",
                        l ? "," : "", l + 1, w->sku_id[skus[l]], 1 + pick_weighted(&ro, DM_QTY, 2));
            fputs("]}\n", w->ev);
            w->nevents++;
            w->norders++;
        }
    }
}

static int write_demand_world(world *w)
{
    const opts *o = w->o;
    char path[4096];
    /* Stores ship their whole stock if asked and keep none back: the regime alone decides. */
    for (size_t i = 0; i < w->nstores; i++) {
        w->stores[i].safety = 0;
        w->stores[i].capacity = 100000;
    }
    FILE *f = open_out(o->out_dir, "network.yaml", path, sizeof path);
    if (!f)
        return 1;
    write_network(w, f);
    if (!close_out(f, path))
        return 1;
    for (int la = 0; la < 2; la++) {
        f = open_out(o->out_dir, la ? "routing_lookahead.yaml" : "routing.yaml", path, sizeof path);
        if (!f)
            return 1;
        write_demand_routing(w, f, la);
        if (!close_out(f, path))
            return 1;
    }
    f = open_out(o->out_dir, "forecast.csv", path, sizeof path);
    if (!f)
        return 1;
    write_forecast(w, f);
    if (!close_out(f, path))
        return 1;
    w->ev = open_out(o->out_dir, "events.jsonl", path, sizeof path);
    if (!w->ev)
        return 1;
    setvbuf(w->ev, NULL, _IOFBF, 1 << 20);
    write_demand_events(w);
    f = w->ev;
    w->ev = NULL;
    if (!close_out(f, path))
        return 1;
    fprintf(stderr,
            "gen: %s stock, %zu nodes, %" PRId64 " SKUs, %" PRId64 " events (%" PRId64
            " snapshots, %" PRId64 " orders, %" PRId64 " receipts) -> %s/\n",
            o->demand, NCENTRES + w->nstores, o->skus, w->nevents, w->nsnapshots, w->norders,
            w->nreceipts, o->out_dir);
    return 0;
}

/* ---- command line ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fputs("usage: gen [--out-dir DIR] [--seed N] [--stores N] [--skus N] [--orders N]\n"
          "           [--days N] [--bad N]\n"
          "\n"
          "Writes DIR/network.yaml, DIR/routing.yaml and DIR/events.jsonl.\n"
          "  --out-dir DIR  where to write (default .; created when missing)\n"
          "  --seed N       the PRNG seed (default 1)\n"
          "  --stores N     stores (default 1000)\n"
          "  --skus N       catalogue size (default 5000)\n"
          "  --orders N     orders per day (default 50000)\n"
          "  --days N       days of orders after the opening stock (default 1)\n"
          "  --bad N        malformed lines spread through the day (default 0)\n"
          "  --demand tight|ample\n"
          "                 instead: the look-ahead benchmark's world, a demand model written\n"
          "                 as DIR/forecast.csv and --days (default 7) of orders drawn from it\n"
          "                 (default 40 stores, 100 SKUs, 600 orders a day), with\n"
          "                 DIR/routing.yaml and DIR/routing_lookahead.yaml\n"
          "  --horizon-hours N, --refresh-events N\n"
          "                 the look-ahead block of routing_lookahead.yaml (168, 250)\n",
          f);
}

static bool parse_count(const char *name, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "gen: --%s must be an integer from %" PRId64 " to %" PRId64 ", not '%s'\n",
                name, min, max, s);
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    opts o = {.out_dir = ".",
              .seed = 1,
              .stores = 1000,
              .skus = 5000,
              .orders = 50000,
              .days = 1,
              .bad = 0};
    static const struct option longopts[] = {{"out-dir", required_argument, NULL, 'o'},
                                             {"seed", required_argument, NULL, 's'},
                                             {"stores", required_argument, NULL, 'S'},
                                             {"skus", required_argument, NULL, 'k'},
                                             {"orders", required_argument, NULL, 'n'},
                                             {"days", required_argument, NULL, 'd'},
                                             {"bad", required_argument, NULL, 'b'},
                                             {"demand", required_argument, NULL, 'D'},
                                             {"horizon-hours", required_argument, NULL, 'H'},
                                             {"refresh-events", required_argument, NULL, 'R'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    int64_t seed = 1;
    bool set_stores = false, set_skus = false, set_orders = false, set_days = false;
    o.horizon_hours = 168;
    o.refresh_events = 250;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;
        switch (ch) {
        case 'o':
            o.out_dir = optarg;
            break;
        case 's':
            ok = parse_count("seed", optarg, 0, INT64_MAX, &seed);
            break;
        case 'S':
            ok = parse_count("stores", optarg, 1, 1000000, &o.stores);
            set_stores = true;
            break;
        case 'k':
            ok = parse_count("skus", optarg, 1, 10000000, &o.skus);
            set_skus = true;
            break;
        case 'n':
            ok = parse_count("orders", optarg, 0, 100000000, &o.orders);
            set_orders = true;
            break;
        case 'd':
            ok = parse_count("days", optarg, 1, 3650, &o.days);
            set_days = true;
            break;
        case 'b':
            ok = parse_count("bad", optarg, 0, 1000000, &o.bad);
            break;
        case 'D':
            o.demand = optarg;
            ok = !strcmp(optarg, "tight") || !strcmp(optarg, "ample");
            if (!ok)
                fprintf(stderr, "gen: --demand must be tight or ample, not '%s'\n", optarg);
            break;
        case 'H':
            ok = parse_count("horizon-hours", optarg, 1, 100000, &o.horizon_hours);
            break;
        case 'R':
            ok = parse_count("refresh-events", optarg, 1, 1000000000, &o.refresh_events);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "gen: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (o.orders * o.days > 100000000) {
        fputs("gen: at most 100000000 orders in all\n", stderr);
        return 2;
    }
    o.seed = (uint64_t)seed;
    if (mkdir(o.out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen: %s: %s\n", o.out_dir, strerror(errno));
        return 1;
    }

    if (o.demand) {
        o.stores = set_stores ? o.stores : 40;
        o.skus = set_skus ? o.skus : 100;
        o.orders = set_orders ? o.orders : 600;
        o.days = set_days ? o.days : 7;
    }
    world w = {0};
    build_world(&w, &o);
    char path[4096];
    int rc = 1;
    if (o.demand) {
        rc = write_demand_world(&w);
        destroy_world(&w);
        return rc;
    }

    FILE *f = open_out(o.out_dir, "network.yaml", path, sizeof path);
    if (!f)
        goto done;
    write_network(&w, f);
    if (!close_out(f, path))
        goto done;

    f = open_out(o.out_dir, "routing.yaml", path, sizeof path);
    if (!f)
        goto done;
    write_routing(&w, f);
    if (!close_out(f, path))
        goto done;

    w.ev = open_out(o.out_dir, "events.jsonl", path, sizeof path);
    if (!w.ev)
        goto done;
    setvbuf(w.ev, NULL, _IOFBF, 1 << 20);
    write_opening_stock(&w);
    write_days(&w);
    f = w.ev;
    w.ev = NULL;
    if (!close_out(f, path))
        goto done;

    fprintf(stderr,
            "gen: %zu nodes, %" PRId64 " SKUs -> %s/{network,routing}.yaml\n"
            "gen: %" PRId64 " events -> %s: %" PRId64 " snapshots, %" PRId64 " orders, %" PRId64
            " walk-in sales, %" PRId64 " receipts, %" PRId64 " recounts, %" PRId64
            " cancellations, %" PRId64 " bad lines\n",
            NCENTRES + w.nstores, o.skus, o.out_dir, w.nevents, path, w.nsnapshots, w.norders,
            w.npos, w.nreceipts, w.nrecounts, w.ncancels, w.nbad);
    rc = 0;
done:
    destroy_world(&w);
    return rc;
}
