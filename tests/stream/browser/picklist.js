// Drives a store's pick list page, as served by `omo run`, in headless Chromium the way a
// picker would on a phone: reads the rows and checks they are in walking order (and in the
// order of the JSON list), prints the list, confirms one tote and shorts another through the
// page's own buttons, and keeps a phone-sized screenshot. Run by tests/stream/test_browser.c:
//
//   node picklist.js BASE_URL STORE TOKEN CONFIRM_SHIPMENT SHORT_SHIPMENT SHORT_LINE PICKED
//                    REASON ARTIFACT_DIR
//
// Prints one JSON object with what it saw on stdout; exits 1 with the reason on stderr when
// anything is not as it should be.
'use strict';
const path = require('path');
const fs = require('fs');
const { chromium } = require('playwright-core');

const [base, store, token, confirmId, shortId, shortLine, pickedArg, reason, artifacts] =
    process.argv.slice(2);
if (!artifacts) {
    console.error('usage: node picklist.js BASE STORE TOKEN CONFIRM SHORT LINE PICKED REASON DIR');
    process.exit(2);
}
const picked = Number(pickedArg);

function fail(msg) {
    throw new Error(msg);
}

function parseBin(bin) {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(bin || '');
    return m ? m.slice(1).map(Number) : null;
}

// The walk, checked from its definition rather than from the service's sort: aisles
// ascending; bays ascending in the 1st, 3rd, ... aisle walked and descending in the 2nd, 4th,
// ...; then shelf; rows without a bin last, by SKU.
function checkWalk(rows) {
    let seenUnbinned = false;
    let walked = -1;
    let prev = null;
    let prevSku = null;
    for (const [i, r] of rows.entries()) {
        const b = parseBin(r.bin);
        if (!b) {
            if (prevSku !== null && seenUnbinned && r.sku < prevSku)
                fail(`row ${i + 1}: unbinned ${r.sku} after ${prevSku}`);
            seenUnbinned = true;
            prevSku = r.sku;
            continue;
        }
        if (seenUnbinned)
            fail(`row ${i + 1}: bin ${r.bin} after a row without a bin`);
        if (!prev || b[0] !== prev[0]) {
            if (prev && b[0] < prev[0])
                fail(`row ${i + 1}: aisle ${b[0]} after aisle ${prev[0]}`);
            walked++;
        } else {
            const up = walked % 2 === 0;
            const bayOk = up ? b[1] >= prev[1] : b[1] <= prev[1];
            if (!bayOk)
                fail(`row ${i + 1}: bay ${b[1]} after ${prev[1]} in the ${walked + 1}. aisle ` +
                     `walked (${up ? 'up' : 'down'})`);
            if (b[1] === prev[1] && b[2] < prev[2])
                fail(`row ${i + 1}: shelf ${b[2]} after ${prev[2]}`);
        }
        prev = b;
    }
    return walked + 1;
}

async function resultOf(page, id) {
    const sel = `section.tote[data-shipment="${id}"] .result`;
    await page.waitForFunction(
        (s) => {
            const r = document.querySelector(s);
            return r && r.textContent && !/^Sending/.test(r.textContent);
        },
        sel, { timeout: 20000 });
    return page.$eval(sel, (r) => ({ text: r.textContent, cls: r.className }));
}

(async () => {
    const q = `token=${encodeURIComponent(token)}`;
    const listUrl = `${base}/stores/${encodeURIComponent(store)}/picklist`;
    const res = await fetch(`${listUrl}?format=json`,
                            { headers: { Authorization: `Bearer ${token}` } });
    if (res.status !== 200)
        fail(`GET ${listUrl}?format=json: HTTP ${res.status}`);
    const list = await res.json();

    fs.mkdirSync(artifacts, { recursive: true });
    const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const out = {};
    try {
        const context = await browser.newContext({
            viewport: { width: 390, height: 844 },
            deviceScaleFactor: 2,
            isMobile: true,
            hasTouch: true,
        });
        const page = await context.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
        const nav = await page.goto(`${listUrl}?format=html&${q}`);
        if (!nav || nav.status() !== 200)
            fail(`GET html: HTTP ${nav ? nav.status() : '?'}`);

        // The rows as a picker reads them, top to bottom.
        const rows = await page.$$eval('.row', (els) => els.map((el) => {
            const bin = el.querySelector('.bin');
            return {
                bin: bin && !bin.classList.contains('none') ? bin.textContent.trim() : null,
                sku: (el.querySelector('.sku') || {}).textContent,
                qty: Number(((el.querySelector('.qty') || {}).textContent || '').replace(/\D/g, '')),
                tote: Number(((el.querySelector('.badge') || {}).textContent || '').trim()),
            };
        }));
        if (rows.length !== list.rows.length)
            fail(`the page shows ${rows.length} rows, the JSON list ${list.rows.length}`);
        list.rows.forEach((jr, i) => {
            const r = rows[i];
            if (r.bin !== jr.bin || r.sku !== jr.sku || r.qty !== jr.qty || r.tote !== jr.tote)
                fail(`row ${i + 1}: page ${JSON.stringify(r)} vs JSON ${JSON.stringify(jr)}`);
        });
        out.rows = rows;
        out.aisles_walked = checkWalk(rows);

        // Every tote has its card with the controls.
        for (const t of list.totes) {
            for (const what of ['button.confirm', 'button.short'])
                if (!(await page.$(`${what}[data-shipment="${t.shipment_id}"]`)))
                    fail(`no ${what} for ${t.shipment_id}`);
        }

        // The print layout, before anything is picked.
        await page.emulateMedia({ media: 'print' });
        const hiddenInPrint = await page.$eval('button.confirm', (b) =>
            getComputedStyle(b).display === 'none' || !b.offsetParent);
        if (!hiddenInPrint)
            fail('the confirm buttons show in print');
        await page.pdf({ path: path.join(artifacts, 'picklist_print.pdf'), format: 'A4',
                         printBackground: true, preferCSSPageSize: true });
        await page.emulateMedia({ media: 'screen' });

        // Confirm one tote whole.
        await page.click(`button.confirm[data-shipment="${confirmId}"]`);
        out.confirm = await resultOf(page, confirmId);
        if (out.confirm.text !== 'picked')
            fail(`confirm ${confirmId}: the page says "${out.confirm.text}"`);

        // Short another: open its form, enter the count, pick the reason, submit.
        const card = `section.tote[data-shipment="${shortId}"]`;
        await page.click(`button.short[data-shipment="${shortId}"]`);
        const input = `${card} input.picked[data-line="${shortLine}"]`;
        await page.waitForSelector(input, { state: 'visible', timeout: 5000 });
        await page.fill(input, String(picked));
        await page.selectOption(`${card} select.reason[data-line="${shortLine}"]`, reason);
        await page.click(`${card} button.submit-short`);
        out.short = await resultOf(page, shortId);
        if (out.short.text !== 'short')
            fail(`short ${shortId}: the page says "${out.short.text}"`);

        // A done tote's controls stay disabled.
        const disabled = await page.$eval(`button.confirm[data-shipment="${confirmId}"]`,
                                          (b) => b.disabled);
        out.confirm_disabled_after = disabled;

        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: path.join(artifacts, 'picklist_phone.png') });
        await page.screenshot({ path: path.join(artifacts, 'picklist_phone_full.png'),
                                fullPage: true });
        // The two results as the picker sees them.
        await page.locator(`section.tote[data-shipment="${shortId}"]`).scrollIntoViewIfNeeded();
        await page.screenshot({ path: path.join(artifacts, 'picklist_phone_results.png') });

        // Loaded again, the list no longer holds the two totes.
        await page.reload();
        const left = await page.$$eval('section.tote', (els) =>
            els.map((e) => e.getAttribute('data-shipment')));
        if (left.includes(confirmId) || left.includes(shortId))
            fail(`after reload the page still lists ${left.join(', ')}`);
        out.totes_after = left;
        if (errors.length)
            fail(`the page reported errors: ${errors.join('; ')}`);
        await context.close();
    } finally {
        await browser.close();
    }
    process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
    console.error(`picklist.js: ${e && e.message ? e.message : e}`);
    process.exit(1);
});
