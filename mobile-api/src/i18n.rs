//! Patient-facing texts: plain, polite Japanese (敬語) first, English on request.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// `?lang=` wins; otherwise the browser's first preference; Japanese by default.
    pub fn pick(query: Option<&str>, accept_language: Option<&str>) -> Self {
        match query {
            Some("en") => Self::En,
            Some("ja") => Self::Ja,
            _ => {
                let first = accept_language.and_then(|h| h.split(',').next()).unwrap_or("ja").trim();
                // Compared in place: no lower-cased copy per request.
                if first.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("en")) {
                    Self::En
                } else {
                    Self::Ja
                }
            }
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    pub fn is_en(self) -> bool {
        self == Self::En
    }

    pub fn t(self) -> &'static Texts {
        match self {
            Self::Ja => &JA,
            Self::En => &EN,
        }
    }
}

pub struct Texts {
    pub other_lang_code: &'static str,
    pub other_lang: &'static str,
    pub contacts: &'static str,
    pub emergency: &'static str,
    pub day: &'static str,
    pub night: &'static str,
    pub vendor: &'static str,
    pub call: &'static str,
    pub say_asset_tag: &'static str,
    pub troubleshooting: &'static str,
    pub alarms: &'static str,
    pub if_lost: &'static str,
    pub returning: &'static str,
    pub data_protection: &'static str,
    pub data_on_device: &'static str,
    pub report_title: &'static str,
    pub report_lead: &'static str,
    pub report_category: &'static str,
    pub report_body: &'static str,
    pub report_body_hint: &'static str,
    pub report_phone: &'static str,
    pub report_send: &'static str,
    pub report_thanks: &'static str,
    pub not_found_title: &'static str,
    pub not_found_lead: &'static str,
    pub revoked_title: &'static str,
    pub revoked_lead: &'static str,
    pub ask_clinic: &'static str,
    pub too_many: &'static str,
    pub form_expired: &'static str,
    pub too_long: &'static str,
    pub cannot_show: &'static str,
    pub report_check: &'static str,
}

pub static JA: Texts = Texts {
    other_lang_code: "en",
    other_lang: "English",
    contacts: "お困りのときの連絡先",
    emergency: "命にかかわるような緊急のときは、ためらわず119番に電話してください。",
    day: "日中",
    night: "夜間・休日",
    vendor: "機器の故障・使い方",
    call: "電話をかける",
    say_asset_tag: "お電話では、機器のラベルにある番号をお伝えください",
    troubleshooting: "うまく動かないとき",
    alarms: "アラームが鳴ったとき・測定値がおかしいとき",
    if_lost: "なくしたとき・盗まれたとき",
    returning: "返却のしかた",
    data_protection: "データの扱いと保護",
    data_on_device: "この機器に保存される情報",
    report_title: "医療機関への連絡（急がないとき）",
    report_lead: "職員が確認して、必要なときは折り返しご連絡します。夜間・休日はすぐに確認できないことがあります。お急ぎのときは、上の番号にお電話ください。",
    report_category: "どのようなことですか",
    report_body: "くわしい内容（任意）",
    report_body_hint: "お名前や病状は書かなくても大丈夫です。",
    report_phone: "折り返しの電話番号（任意）",
    report_send: "送信する",
    report_thanks: "ご連絡ありがとうございました。職員が確認いたします。お急ぎのときは、お電話ください。",
    not_found_title: "このページは見つかりませんでした",
    not_found_lead: "ラベルの読み取りがうまくいかなかったか、このラベルは使われていない可能性があります。",
    revoked_title: "このラベルは現在使われていません",
    revoked_lead: "新しいラベルに貼り替えられたか、機器の貸出が終わっています。",
    ask_clinic: "お手数ですが、医療機関にお電話でお問い合わせください。",
    too_many: "短い時間に何度も送信されたため、受け付けを一時的に止めています。しばらくしてから、もう一度お試しください。お急ぎのときは、お電話ください。",
    form_expired: "画面を開いてから時間がたったため、送信できませんでした。お手数ですが、ページを開き直してから送信してください。",
    too_long: "お送りいただいた内容が長すぎるため、受け付けることができませんでした。お手数ですが、短くしてもう一度お送りいただくか、お電話でご連絡ください。",
    cannot_show: "このページは表示できませんでした。お手数ですが、下の番号にお電話でお問い合わせください。",
    report_check: "送信できませんでした。お手数ですが、下の内容をご確認ください。入力された内容はそのまま残っています。",
};

pub static EN: Texts = Texts {
    other_lang_code: "ja",
    other_lang: "日本語",
    contacts: "Whom to call",
    emergency: "In a life-threatening emergency, call 119 at once.",
    day: "Daytime",
    night: "Nights and holidays",
    vendor: "Device faults and how to use it",
    call: "Call",
    say_asset_tag: "When you call, please give the number on the device's label",
    troubleshooting: "If it does not work",
    alarms: "If an alarm sounds or a reading looks wrong",
    if_lost: "If it is lost or stolen",
    returning: "How to return it",
    data_protection: "Your data and how it is protected",
    data_on_device: "What the device stores",
    report_title: "Tell the clinic (when it is not urgent)",
    report_lead: "Staff will read it and call you back if needed. At night and on holidays it may not be read at once; if it is urgent, please call the numbers above.",
    report_category: "What happened?",
    report_body: "Details (optional)",
    report_body_hint: "You do not need to write your name or your condition.",
    report_phone: "Phone number to call you back (optional)",
    report_send: "Send",
    report_thanks: "Thank you. Staff will read your message. If it is urgent, please call.",
    not_found_title: "This page was not found",
    not_found_lead: "The label may not have scanned correctly, or it is no longer in use.",
    revoked_title: "This label is no longer in use",
    revoked_lead: "The device has a new label, or its loan has ended.",
    ask_clinic: "Please call the clinic.",
    too_many: "Too many messages in a short time; please try again later. If it is urgent, please call.",
    form_expired: "The page was open too long to send. Please reload the page and send again.",
    too_long: "Your message was too long to accept. Please shorten it and send it again, or call us.",
    cannot_show: "This page cannot be shown. Please call the numbers below.",
    report_check: "Your message was not sent. Please check the points below; what you entered is still here.",
};
