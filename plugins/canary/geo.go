package main

// The built-in tables of R0052 (lifter:canary_geo_mismatch), in the block form its params
// take: one line per key, "KEY value value ...". A rule's params.timezone_groups,
// params.country_timezones and params.country_languages replace or add entries key by key.
//
// Why here and not in the rule file: the host sends params as JSON, and decoding these 10 KB of
// zone names inside the WebAssembly guest took 10 ms of a configure call on an idle machine and
// over 50 ms, the call deadline, on a loaded one (the plugin was refused). Parsed here, they are
// built once when the module is initialised, outside any call deadline.

// builtinTimezoneGroups lists zones that keep the same UTC offset and daylight-saving rules
// all year, so a browser reporting any of them keeps the same clock (Windows often reports
// Europe/Berlin for all of Central Europe). "Region/*" is a prefix.
const builtinTimezoneGroups = `
UTC         UTC Etc/UTC Etc/GMT Etc/GMT0 Etc/GMT+0 Etc/GMT-0 Etc/Universal Etc/Zulu Etc/Greenwich GMT Universal Zulu Greenwich Atlantic/Reykjavik Africa/Abidjan Africa/Accra Africa/Dakar Africa/Bamako Africa/Monrovia Africa/Freetown Africa/Conakry Africa/Lome Africa/Ouagadougou
WET         Europe/London Europe/Dublin Europe/Lisbon Europe/Belfast Europe/Guernsey Europe/Isle_of_Man Europe/Jersey Atlantic/Canary Atlantic/Madeira Atlantic/Faroe GB Eire Portugal
CET         Europe/Amsterdam Europe/Berlin Europe/Busingen Europe/Paris Europe/Brussels Europe/Luxembourg Europe/Zurich Europe/Vaduz Europe/Vienna Europe/Rome Europe/Vatican Europe/San_Marino Europe/Malta Europe/Madrid Africa/Ceuta Europe/Andorra Europe/Monaco Europe/Gibraltar Europe/Stockholm Europe/Oslo Arctic/Longyearbyen Europe/Copenhagen Europe/Prague Europe/Bratislava Europe/Warsaw Europe/Budapest Europe/Ljubljana Europe/Zagreb Europe/Belgrade Europe/Sarajevo Europe/Skopje Europe/Podgorica Europe/Tirane CET MET Poland
EET         Europe/Helsinki Europe/Mariehamn Europe/Tallinn Europe/Riga Europe/Vilnius Europe/Kyiv Europe/Kiev Europe/Uzhgorod Europe/Zaporozhye Europe/Bucharest Europe/Sofia Europe/Athens Europe/Chisinau Asia/Nicosia Asia/Famagusta Europe/Nicosia EET
MSK         Europe/Moscow Europe/Simferopol Europe/Kirov Europe/Volgograd Europe/Minsk Europe/Istanbul Asia/Istanbul Turkey W-SU Asia/Riyadh Asia/Kuwait Asia/Bahrain Asia/Qatar Asia/Aden Asia/Baghdad Africa/Nairobi Africa/Addis_Ababa Africa/Dar_es_Salaam Africa/Kampala Africa/Mogadishu Africa/Djibouti Africa/Asmara
GST         Asia/Dubai Asia/Muscat Asia/Baku Asia/Tbilisi Asia/Yerevan Europe/Samara Europe/Saratov Europe/Ulyanovsk Europe/Astrakhan Indian/Mauritius Indian/Reunion Indian/Mahe
PKT         Asia/Karachi Asia/Tashkent Asia/Samarkand Asia/Dushanbe Asia/Ashgabat Asia/Yekaterinburg Asia/Almaty Asia/Qostanay Asia/Aqtobe Asia/Aqtau Asia/Atyrau Asia/Oral Asia/Qyzylorda Indian/Maldives
IST         Asia/Kolkata Asia/Calcutta Asia/Colombo
BST6        Asia/Dhaka Asia/Dacca Asia/Thimphu Asia/Bishkek Asia/Omsk Asia/Urumqi Asia/Kashgar
ICT         Asia/Bangkok Asia/Ho_Chi_Minh Asia/Saigon Asia/Phnom_Penh Asia/Vientiane Asia/Jakarta Asia/Pontianak Asia/Novosibirsk Asia/Krasnoyarsk Asia/Barnaul Asia/Tomsk Asia/Novokuznetsk Asia/Hovd
CST8        Asia/Shanghai Asia/Chongqing Asia/Chungking Asia/Harbin PRC Asia/Hong_Kong Hongkong Asia/Macau Asia/Taipei ROC Asia/Singapore Singapore Asia/Kuala_Lumpur Asia/Kuching Asia/Brunei Asia/Manila Asia/Makassar Asia/Irkutsk Asia/Ulaanbaatar Australia/Perth Australia/West
JST         Asia/Tokyo Japan Asia/Seoul ROK Asia/Pyongyang Asia/Jayapura Asia/Yakutsk Asia/Chita Asia/Khandyga Pacific/Palau Asia/Dili
SAST        Africa/Johannesburg Africa/Maputo Africa/Harare Africa/Lusaka Africa/Gaborone Africa/Maseru Africa/Mbabane Africa/Blantyre Africa/Kigali Africa/Bujumbura Africa/Lubumbashi Africa/Windhoek Africa/Tripoli Europe/Kaliningrad
WAT         Africa/Lagos Africa/Algiers Africa/Tunis Africa/Kinshasa Africa/Luanda Africa/Douala Africa/Libreville Africa/Malabo Africa/Niamey Africa/Ndjamena Africa/Porto-Novo Africa/Brazzaville Africa/Bangui
US_EASTERN  America/New_York America/Detroit America/Toronto America/Montreal America/Nassau America/Iqaluit America/Nipigon America/Thunder_Bay America/Indianapolis America/Louisville America/Fort_Wayne America/Kentucky/* US/Eastern US/Michigan US/East-Indiana EST5EDT Canada/Eastern
US_CENTRAL  America/Chicago America/Winnipeg America/Menominee America/Matamoros America/Rainy_River America/Rankin_Inlet America/Resolute America/North_Dakota/* America/Indiana/Knox America/Indiana/Tell_City America/Knox_IN US/Central US/Indiana-Starke CST6CDT Canada/Central
US_MOUNTAIN America/Denver America/Boise America/Edmonton America/Cambridge_Bay America/Inuvik America/Yellowknife America/Ciudad_Juarez America/Shiprock US/Mountain MST7MDT Canada/Mountain Navajo
US_PACIFIC  America/Los_Angeles America/Vancouver America/Tijuana America/Ensenada America/Santa_Isabel US/Pacific PST8PDT Canada/Pacific Mexico/BajaNorte
US_ALASKA   America/Anchorage America/Juneau America/Sitka America/Metlakatla America/Yakutat America/Nome US/Alaska
BRT         America/Sao_Paulo America/Bahia America/Fortaleza America/Recife America/Belem America/Maceio America/Araguaina America/Santarem Brazil/East America/Argentina/* America/Buenos_Aires America/Cordoba America/Catamarca America/Jujuy America/Mendoza America/Rosario America/Montevideo America/Punta_Arenas America/Cayenne America/Paramaribo
COT         America/Bogota America/Lima America/Guayaquil America/Panama America/Cancun America/Jamaica America/Cayman America/Rio_Branco America/Eirunepe America/Atikokan America/Coral_Harbour Brazil/Acre Jamaica
CST6        America/Mexico_City America/Monterrey America/Merida America/Bahia_Banderas America/Chihuahua America/Regina America/Swift_Current America/Guatemala America/Costa_Rica America/El_Salvador America/Tegucigalpa America/Managua America/Belize Mexico/General Canada/Saskatchewan
AMT         America/Manaus America/Cuiaba America/Campo_Grande America/Porto_Velho America/Boa_Vista America/Caracas America/La_Paz America/Puerto_Rico America/Santo_Domingo America/Barbados America/Guyana America/Martinique America/Port_of_Spain Brazil/West
AEST        Australia/Sydney Australia/Melbourne Australia/Hobart Australia/Canberra Australia/ACT Australia/NSW Australia/Victoria Australia/Tasmania Australia/Currie
`

// builtinCountryTimezones maps a country (ISO 3166-1 alpha-2, as geo.country) to the zones its
// browsers report; a zone in the same group as one listed fits too. "Region/*" is a prefix.
// A country missing here is compared by region only (Europe/... against America/...).
const builtinCountryTimezones = `
US America/New_York America/Chicago America/Denver America/Phoenix America/Los_Angeles America/Anchorage America/Adak Pacific/Honolulu America/Indiana/* America/Kentucky/* America/North_Dakota/* America/Boise America/Detroit America/Juneau US/*
CA America/Toronto America/Vancouver America/Edmonton America/Winnipeg America/Regina America/Halifax America/Moncton America/Glace_Bay America/Goose_Bay America/St_Johns America/Whitehorse America/Dawson America/Dawson_Creek America/Fort_Nelson America/Creston America/Blanc-Sablon America/Atikokan Canada/*
MX America/Mexico_City America/Tijuana America/Hermosillo America/Mazatlan America/Cancun America/Chihuahua America/Ciudad_Juarez America/Ojinaga America/Matamoros
BR America/Sao_Paulo America/Manaus America/Rio_Branco America/Noronha Brazil/*
AR America/Argentina/* America/Buenos_Aires
CL America/Santiago America/Punta_Arenas Pacific/Easter Chile/*
CO America/Bogota
PE America/Lima
GB Europe/London
IE Europe/Dublin
FR Europe/Paris
DE Europe/Berlin
NL Europe/Amsterdam
BE Europe/Brussels
LU Europe/Luxembourg
CH Europe/Zurich
AT Europe/Vienna
IT Europe/Rome
ES Europe/Madrid Atlantic/Canary
PT Europe/Lisbon Atlantic/Azores
SE Europe/Stockholm
NO Europe/Oslo
DK Europe/Copenhagen
FI Europe/Helsinki
IS Atlantic/Reykjavik
PL Europe/Warsaw
CZ Europe/Prague
SK Europe/Bratislava
HU Europe/Budapest
RO Europe/Bucharest
BG Europe/Sofia
GR Europe/Athens
LT Europe/Vilnius
LV Europe/Riga
EE Europe/Tallinn
RS Europe/Belgrade
HR Europe/Zagreb
SI Europe/Ljubljana
MD Europe/Chisinau
UA Europe/Kyiv
BY Europe/Minsk
RU Europe/Moscow Europe/Kaliningrad Europe/Samara Asia/Yekaterinburg Asia/Omsk Asia/Novosibirsk Asia/Krasnoyarsk Asia/Irkutsk Asia/Yakutsk Asia/Vladivostok Asia/Magadan Asia/Sakhalin Asia/Srednekolymsk Asia/Kamchatka Asia/Anadyr Asia/Ust-Nera
TR Europe/Istanbul
IL Asia/Jerusalem Asia/Tel_Aviv Israel
AE Asia/Dubai
SA Asia/Riyadh
EG Africa/Cairo Egypt
ZA Africa/Johannesburg
NG Africa/Lagos
KE Africa/Nairobi
IN Asia/Kolkata
PK Asia/Karachi
BD Asia/Dhaka
CN Asia/Shanghai Asia/Urumqi
HK Asia/Hong_Kong
TW Asia/Taipei
JP Asia/Tokyo
KR Asia/Seoul
SG Asia/Singapore
MY Asia/Kuala_Lumpur
TH Asia/Bangkok
VN Asia/Ho_Chi_Minh
ID Asia/Jakarta Asia/Makassar Asia/Jayapura
PH Asia/Manila
AU Australia/*
NZ Pacific/Auckland Pacific/Chatham NZ NZ-CHAT
IR Asia/Tehran Iran
KZ Asia/Almaty
`

// builtinCountryLanguages maps a country to the primary language subtags (BCP 47, lower case)
// of its browsers. A country missing here is never a language mismatch.
const builtinCountryLanguages = `
US en es
CA en fr
MX es
BR pt
AR es
CL es
CO es
PE es qu
GB en cy gd
IE en ga
FR fr br oc co eu ca
DE de
NL nl fy
BE nl fr de
LU lb fr de
CH de fr it rm gsw
AT de
IT it
ES es ca gl eu
PT pt
SE sv fi
NO nb nn no
DK da
FI fi sv
IS is
PL pl
CZ cs sk
SK sk cs hu
HU hu
RO ro hu
BG bg
GR el
LT lt ru pl
LV lv ru
EE et ru
RS sr hu
HR hr
SI sl
MD ro ru
UA uk ru
BY be ru
RU ru tt ba
TR tr ku
IL he iw ar ru
AE ar
SA ar
EG ar
ZA af zu xh
NG ha yo ig
KE sw
IN hi bn te ta mr gu kn ml pa ur or as
PK ur pa
BD bn
CN zh
HK zh yue
TW zh
JP ja
KR ko
SG zh ms ta
MY ms zh ta
TH th
VN vi
ID id in jv su
PH fil tl
AU en
NZ mi
IR fa
KZ kk ru
`
